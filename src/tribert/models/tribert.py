"""The assembled TriBERT model: encoders -> tri-modal transformer -> heads and conditioned U-Net.

Data flow for V video items (a video seen with its mixture)::

    frames [V,K,3,H,W] --VisualSegmentationNet--> [V,K,O,Dv] object tokens  \\
    pose [V,P,T,68,3]  --PoseEncoder (ST-GCN)---> [V,K,O,Dp] person tokens   > TriBERTTransformer
    mix_logmag [V,1,F,T] --VGGish----------------> [V,Da], repeated to [V,K,O,Da] /
        -> hidden states per stream [V,(1+K)*O,D_s]  -> WSDDN heads (vision, pose), audio head
        -> SOS outputs, pooled and concatenated per object [V,O,Dc]
    objects [V,S] -> condition [V,S,Dc] (normalised; + class posteriors [V,S,C] if configured)
    pose --MotionGuide (if configured)--> per-person motion [V,P,Dm,Tp] -> maps [V,S,M,F,T]
        -> AttentionUNet([mix_logmag, maps]) -> mask logits [V,S,1,F,T]

Token layout of every stream (the authors' code): position 0 is the SOS "frame", whose O tokens are
the mean over the K frames of each object's tokens; positions 1..K are the frames; flattened
position-major, so tokens ``[:O]`` are the SOS and ``[O:]`` the K*O frame tokens. There are no
positional or segment embeddings (as in the code). Object slot ``o`` means the o-th best detected
object in vision and person ``o`` in pose; the audio stream repeats its one vector.

Token masking (training only, ``token_mask_prob``, paper 15%): each frame token of the vision
and pose streams is replaced by zeros before the embedding layer (ViLBERT's treatment of masked
image regions; no learned mask token, so no parameter exists only for masking). The SOS tokens are
computed from the unmasked tokens and never masked. The audio stream is not masked: its tokens are
copies of one vector (the paper masks "image regions").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tribert.models.audio import VGGishEncoder
from tribert.models.base import (SeparatorOutput, check_shape, drawn_from_seed, partner_weights, run_seed_plus,
                                 select_objects, separate_sources, weigh_objects)
from tribert.models.coattention import TriModalEncoder
from tribert.config.model import ModelConfig
from tribert.config.sizes import SIZES, model_config, paper_config, small_config, tiny_config
from tribert.models.heads import AudioClassificationHead, WeakClassificationHead
from tribert.models.motion import MotionGuide
from tribert.models.pose import PoseEncoder, pose_presence
from tribert.models.unet import AttentionUNet
from tribert.models.visual import VisualSegmentationNet

# The names of co-attention's parameters start so (train.clip_coattention_apart clips them apart).
COATTENTION_PARAMETERS = "transformer.encoder.co_blocks."
# model.separator_own_init / coattention_own_init: those weights are drawn from torch.manual_seed(run seed + this).
SEPARATOR_SEED_OFFSET = 7919
COATTENTION_SEED_OFFSET = 104729


@dataclass
class TriBERTEncoding:
    """Everything TriBERT computes before the separator (B videos, K frames, O objects, C classes).

    Streams left out by an ablation (``use_vision`` / ``use_pose`` False) are missing from the
    dicts and their fields are None.
    """

    mix_logmag: Tensor  # [B, 1, F, T] the separator's input
    pooled_sos: Tensor  # [B, O, Dc] concatenated pooled SOS outputs per object (the condition)
    embeddings: dict[str, Tensor]  # stream -> [B, (1+K)*O, D_s] transformer input (after masking)
    hidden: dict[str, Tensor]  # stream -> [B, (1+K)*O, D_s] transformer output
    vision_scores: Optional[Tensor]  # [B, C] WSDDN scores in [0, 1] (BCE)
    pose_scores: Optional[Tensor]  # [B, C] WSDDN scores in [0, 1] (BCE)
    audio_logits: Tensor  # [B, C] logits (BCE with logits)
    object_presence: Tensor  # [B, O] bool: which object slots a whole-video condition averages
    visual_class_scores: Optional[Tensor]  # [B, K, C] the segmentation net's per-frame class logits
    visual_top_classes: Optional[Tensor]  # [B, K, O] classes whose features became the tokens
    visual_attention: Optional[Tensor]  # [B, K, C, h, w] attention maps A_m (localisation)
    audio_encoder_logits: Optional[Tensor] = None  # [B, C] class head on the audio encoder (if configured)
    motion: Optional[Tensor] = None  # [B, P, Dm, Tp] per-person motion features (if the motion guide is on)


@dataclass
class TriBERTOutput(TriBERTEncoding, SeparatorOutput):
    """``TriBERTEncoding`` plus ``mask_logits`` [B, S, 1, F, T] (one mask per requested source) and
    ``condition_logits`` [B, S, C] (the class head on each source's condition; None without one)."""

    condition_logits: Optional[Tensor] = None
    motion_maps: Optional[Tensor] = None  # [B, S, M, F, T] the motion guide's maps of each requested source


class StreamEmbedding(nn.Module):
    """Encoder tokens -> stream width: Linear + LayerNorm + Dropout (ViLBERT's image embedding,
    without the location/position term)."""

    def __init__(self, in_dim: int, dim: int, dropout: float):
        super().__init__()
        self.proj = nn.Linear(in_dim, dim)
        self.norm = nn.LayerNorm(dim, eps=1e-12)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.norm(self.proj(x)))


class TriBERTTransformer(nn.Module):
    """SOS + masking + embeddings, the tri-modal encoder, and the SOS poolers.

    Args:
        config: the model sizes (streams, widths, layers, co-attention, masking, pooling).
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.streams = config.streams()
        in_dims = {"vision": config.visual_dim, "pose": config.pose_dim, "audio": config.audio_dim}
        dims = {s: config.hidden(s) for s in self.streams}
        self.embed = nn.ModuleDict({s: StreamEmbedding(in_dims[s], dims[s], config.dropout) for s in self.streams})
        self.encoder = TriModalEncoder(dims, config.num_layers, config.num_heads, config.ffn_dim,
                                       config.coattention_dim, config.coattention_layer_ids(),
                                       config.dropout, config.attention_dropout, config.coattention_layout,
                                       config.coattention_gate, config.coattention_streams(),
                                       coattention_receivers=config.coattention_receivers,
                                       coattention_detach_senders=config.coattention_detach_senders,
                                       coattention_dropout=config.coattention_dropout,
                                       coattention_seed=run_seed_plus(COATTENTION_SEED_OFFSET)
                                       if config.coattention_own_init else None)
        p = config.sos_pool_dim
        act = {"relu": nn.ReLU, "tanh": nn.Tanh}[config.sos_pool_activation]
        self.pool = nn.ModuleDict({s: nn.Sequential(nn.Linear(dims[s], p), act()) if p else nn.Identity()
                                   for s in self.streams})

    def forward(self, tokens: dict[str, Tensor],
                presence: Optional[Tensor] = None) -> tuple[dict[str, Tensor], dict[str, Tensor], Tensor]:
        """tokens: stream -> [B, K, O, D_in] encoder tokens. presence: optional bool [B, O], the
        object slots that hold a performer, which alone co-attention reads with
        ``coattention_skip_absent`` (None: every slot).

        Returns ``(embeddings, hidden, pooled_sos)``: embeddings and hidden states per stream
        [B, (1+K)*O, D_s], and the pooled SOS outputs concatenated over streams [B, O, Dc].
        """
        embeddings = {}
        for s in self.streams:
            x = tokens[s]  # [B, K, O, D_in]
            sos = x.mean(dim=1, keepdim=True)  # [B, 1, O, D_in] from the unmasked tokens
            if self.training and s != "audio" and self.config.token_mask_prob > 0:
                keep = torch.rand(x.shape[:3] + (1,), device=x.device) >= self.config.token_mask_prob
                x = x * keep.to(x.dtype)  # masked frame tokens become zeros
            x = torch.cat([sos, x], dim=1).flatten(1, 2)  # [B, (1+K)*O, D_in]
            embeddings[s] = self.embed[s](x)  # [B, (1+K)*O, D_s]
        num_frames, num_objects = tokens[self.streams[0]].shape[1:3]
        key_mask = None
        if presence is not None and self.config.coattention_skip_absent:
            key_mask = presence.repeat(1, 1 + num_frames)  # [B, (1+K)*O]: token t is object slot t % O
        hidden = self.encoder(embeddings, key_mask)
        pooled = torch.cat([self.pool[s](hidden[s][:, :num_objects]) for s in self.streams], dim=-1)  # [B, O, Dc]
        return embeddings, hidden, pooled


class TriBERT(nn.Module):
    """TriBERT (NeurIPS 2021): tri-modal vision/pose/audio transformer + conditioned attention U-Net.

    Args:
        config: a ``ModelConfig`` (see ``tribert_paper`` / ``tribert_small`` / ``tribert_tiny``).
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        config.validate()
        self.config = config
        c = config
        if c.use_vision:
            self.visual = VisualSegmentationNet(
                num_classes=c.num_classes, backbone=c.visual_backbone, backbone_width=c.visual_width,
                backbone_layers=c.visual_layers or None, feature_dim=c.visual_dim, num_objects=c.num_objects,
                dropout=c.visual_dropout, attention=c.visual_attention,
                backbone_weights=c.visual_weights or None)
        if c.use_pose:
            self.pose = PoseEncoder(num_frames=c.num_frames, token_dim=c.pose_dim, num_persons=c.num_objects,
                                    pose_frames=c.pose_frames, channels=c.pose_channels,
                                    temporal_strides=c.pose_strides or None, frozen=c.pose_frozen)
        # VGGish normalises its input itself (a BatchNorm: the log-magnitude is far from N(0, 1)).
        self.audio = VGGishEncoder(in_channels=1, channels=c.vggish_channels, out_dim=c.audio_dim)
        self.transformer = TriBERTTransformer(c)
        heads: dict[str, nn.Module] = {}
        if c.use_vision:
            heads["vision"] = WeakClassificationHead(c.vision_hidden, c.num_classes)
        if c.use_pose:
            heads["pose"] = WeakClassificationHead(c.pose_hidden, c.num_classes)
        heads["audio"] = AudioClassificationHead(c.audio_hidden, c.num_classes)
        if c.audio_encoder_classes:
            heads["audio_encoder"] = nn.Linear(c.audio_dim, c.num_classes)
        self.heads = nn.ModuleDict(heads)
        # The condition's own layers: its LayerNorm and the class head on it (either may be absent).
        self.condition_layers = nn.ModuleDict()
        if c.condition_norm == "layernorm":
            self.condition_layers["norm"] = nn.LayerNorm(c.cond_dim())
        if c.condition_classes != "none":
            self.condition_layers["head"] = nn.Linear(c.cond_dim(), c.num_classes)
        # the same separator whatever was built above (paired ablations)
        with drawn_from_seed(run_seed_plus(SEPARATOR_SEED_OFFSET) if c.separator_own_init else None):
            self._build_separator(c)

    def _build_separator(self, c: ModelConfig) -> None:
        """The motion guide (if any) and the conditioned U-Net: the modules named in ``SEPARATOR_MODULES``."""
        if c.uses_motion_guide():
            self.motion = MotionGuide(c.motion_guide, c.motion_guide_maps, c.spec_bins,
                                      partners=c.motion_guide_partners, hidden=c.motion_guide_hidden,
                                      condition_dim=c.unet_cond_dim() if c.motion_guide_condition else 0)
        self.separator = AttentionUNet(
            in_channels=c.unet_in_channels(), out_channels=1, depth=c.unet_depth, base_channels=c.unet_base_channels,
            max_channels=c.unet_max_channels, convs_per_level=c.unet_convs_per_level,
            attention_gates=c.attention_gates, cond_dim=c.unet_cond_dim(), fusion=c.fusion, film=c.film,
            upsample=c.unet_upsample, guide_dim=c.unet_guide_dim())

    # ------------------------------------------------------------------------------------------
    def encode(self, frames: Optional[Tensor], pose: Optional[Tensor], mix_logmag: Tensor,
               pose_features: Optional[Tensor] = None) -> TriBERTEncoding:
        """Run the encoders, the transformer and the class heads.

        Args:
            frames: [B, K, 3, H, W] ImageNet-normalised frames (None if ``use_vision`` is False).
            pose: [B, P, T, 68, 3] keypoints, x and y in [0, 1], confidence (None if ``use_pose``
                is False); P = num_objects, T = pose_frames.
            mix_logmag: [B, 1, F, T] log-frequency log-magnitude of the mixture.
            pose_features: [B, K, P, C*68] the frozen ST-GCN's pooled output on ``pose``, stored
                ahead of training (``PoseEncoder.features``; ``data.stored_pose``); None computes it.
                ``pose`` is still read (which slots hold a performer, the motion guide).
        """
        c = self.config
        check_shape("mix_logmag", mix_logmag, (None, 1, None, None))
        b = mix_logmag.shape[0]
        tokens: dict[str, Tensor] = {}
        vis = None
        if c.use_vision:
            check_shape("frames", frames, (b, c.num_frames, 3, None, None))
            vis = self.visual(frames)
            tokens["vision"] = vis.tokens  # [B, K, O, Dv]
        if c.use_pose:
            check_shape("pose", pose, (b, c.num_objects, None, 68, 3))
            if pose_features is not None:
                check_shape("pose_features", pose_features, (b, c.num_frames, c.num_objects, self.pose.feature_dim))
            tokens["pose"] = self.pose(pose, pose_features)  # [B, K, O, Dp]
        audio = self.audio(mix_logmag)  # [B, Da]
        tokens["audio"] = audio[:, None, None, :].expand(b, c.num_frames, c.num_objects, audio.shape[-1])

        # [B, O] which slots hold a performer, where the condition or co-attention reads it
        mean = c.whole_video_condition == "mean"
        performers = None if mean and not c.coattention_skip_absent else self.performer_slots(pose, b, mix_logmag.device)
        embeddings, hidden, pooled = self.transformer(tokens, performers)
        first = 0 if c.heads_include_sos else c.num_objects
        regions = {s: h[:, first:] for s, h in hidden.items()}  # what the WSDDN heads score
        return TriBERTEncoding(
            mix_logmag=mix_logmag,
            pooled_sos=pooled,
            embeddings=embeddings,
            hidden=hidden,
            vision_scores=self.heads["vision"](regions["vision"]) if c.use_vision else None,
            pose_scores=self.heads["pose"](regions["pose"]) if c.use_pose else None,
            audio_logits=self.heads["audio"](hidden["audio"]),
            object_presence=torch.ones(b, c.num_objects, dtype=torch.bool, device=mix_logmag.device) if mean
            else performers,
            visual_class_scores=vis.class_scores if vis is not None else None,
            visual_top_classes=vis.top_classes if vis is not None else None,
            visual_attention=vis.attention if vis is not None else None,
            audio_encoder_logits=self.heads["audio_encoder"](audio) if "audio_encoder" in self.heads else None,
            motion=self.motion.features(pose) if c.uses_motion_guide() else None,
        )

    def performer_slots(self, pose: Optional[Tensor], b: int, device: torch.device) -> Tensor:
        """Which object slots hold a performer, bool [B, O]: what a whole-video condition averages
        (``whole_video_condition: present``) and, with ``coattention_skip_absent``, what
        co-attention reads."""
        c = self.config
        if c.use_pose:
            presence = pose_presence(pose)  # [B, O]: a solo's empty second person is left out
            return presence | ~presence.any(1, keepdim=True)  # nobody detected: every slot
        # no pose stream: the best-scoring visual object
        return F.one_hot(torch.zeros(b, dtype=torch.long, device=device), c.num_objects).bool()

    def separate(self, encoding: TriBERTEncoding, objects: Tensor, valid: Optional[Tensor] = None) -> Tensor:
        """Mask logits for the requested sources: one U-Net run per (video, object).

        Args:
            encoding: from ``encode``.
            objects: [B, S] long; ``o`` in 0..O-1 = object/person o, -1 = the whole video.
            valid: optional [B, S] bool; the U-Net runs only where True (padding slots of a
                batch cost nothing) and the other masks are left at logit 0.
        Returns:
            mask logits [B, S, 1, F, T].
        """
        cond, _ = self.condition(encoding, objects)
        return separate_sources(self.separator, encoding.mix_logmag, cond, valid, *self.guide(encoding, objects, cond))

    def guide(self, encoding: TriBERTEncoding, objects: Tensor,
              cond: Optional[Tensor] = None) -> tuple[Optional[Tensor], Optional[Tensor]]:
        """The motion guide of the requested sources: its maps [B, S, M, F, T] and, with
        ``motion_guide_film``, the motion features [B, S, Dm, Tp] for the U-Net's decoder
        (None for what is off). ``cond`` [B, S, unet_cond_dim]: the U-Net's condition of each
        source, which the drawing reads with ``motion_guide_condition`` (computed here if not
        given; callers that already have it pass it)."""
        if encoding.motion is None:
            return None, None
        b, s = objects.shape
        motion = select_objects(encoding.motion, objects, encoding.object_presence)  # [B, S, Dm, Tp]
        partners = None
        if self.config.motion_guide_partners:  # the other performers of the video: zero for a solo
            weights = partner_weights(objects, encoding.object_presence)  # [B, S, P]
            partners = weigh_objects(encoding.motion, weights).flatten(0, 1)  # [B*S, Dm, Tp]
        condition = None
        if self.config.motion_guide_condition:
            condition = (self.condition(encoding, objects)[0] if cond is None else cond).flatten(0, 1)  # [B*S, C]
        maps = self.motion.maps(motion.flatten(0, 1), encoding.mix_logmag.shape[-1], partners,
                                condition)  # [B*S, M, F, T]
        return maps.unflatten(0, (b, s)), motion if self.config.unet_guide_dim() else None

    def condition(self, encoding: TriBERTEncoding, objects: Tensor,
                  source_labels: Optional[Tensor] = None) -> tuple[Tensor, Optional[Tensor]]:
        """The U-Net's condition per requested source, and the class head's logits on it.

        objects [B, S], source_labels [B, S] (-1 unknown; used only in training, for
        ``class_teacher_forcing``) -> (condition [B, S, unet_cond_dim], logits [B, S, C] or None).
        """
        cond = select_objects(encoding.pooled_sos, objects, encoding.object_presence)  # [B, S, Dc]
        if self.config.condition_norm == "sigmoid":
            cond = torch.sigmoid(cond)
        elif "norm" in self.condition_layers:
            cond = self.condition_layers["norm"](cond)
        if "head" not in self.condition_layers:
            return cond, None
        logits = self.condition_layers["head"](cond)  # [B, S, C]
        if self.config.condition_classes.startswith("posteriors"):
            classes = logits.softmax(-1)  # [B, S, C]
            p = self.config.class_teacher_forcing
            if self.training and p > 0 and source_labels is not None:
                known = source_labels >= 0
                force = known & (torch.rand(known.shape, device=known.device) < p)  # [B, S]
                truth = F.one_hot(source_labels.clamp_min(0).long(), classes.shape[-1]).to(classes.dtype)
                classes = torch.where(force[..., None], truth, classes)
            if self.training and self.config.class_dropout > 0:
                drop = torch.rand(classes.shape[:-1], device=classes.device) < self.config.class_dropout
                classes = torch.where(drop[..., None], torch.full_like(classes, 1.0 / classes.shape[-1]), classes)
            if self.config.condition_classes == "posteriors_only":
                return classes.to(cond.dtype), logits  # [B, S, C]
            cond = torch.cat([cond, classes.to(cond.dtype)], dim=-1)  # [B, S, Dc + C]
        return cond, logits

    def forward(self, frames: Optional[Tensor], pose: Optional[Tensor], mix_logmag: Tensor, objects: Tensor,
                labels: Optional[Tensor] = None, source_labels: Optional[Tensor] = None,
                valid: Optional[Tensor] = None, pose_features: Optional[Tensor] = None) -> TriBERTOutput:
        """``encode`` then ``separate``; see ``tribert.models.base`` for the shared interface
        (``pose_features``: stored ST-GCN features, see ``encode``).

        TriBERT is conditioned on what it sees and hears: ``labels`` are not used, and
        ``source_labels`` only in training with ``class_teacher_forcing`` (never in eval mode).
        """
        encoding = self.encode(frames, pose, mix_logmag, pose_features)
        cond, condition_logits = self.condition(encoding, objects, source_labels)
        maps, sequence = self.guide(encoding, objects, cond)
        mask_logits = separate_sources(self.separator, encoding.mix_logmag, cond, valid, maps, sequence)
        return TriBERTOutput(mask_logits=mask_logits, condition_logits=condition_logits, motion_maps=maps,
                             **vars(encoding))


# ---------------------------------------------------------------------------------------------
# Named sizes (their configs: tribert.config.sizes)
# ---------------------------------------------------------------------------------------------

def tribert_paper(**overrides) -> TriBERT:
    """TriBERT at the paper's size (``paper_config``); keyword overrides change config fields."""
    return TriBERT(paper_config(**overrides))


def tribert_small(**overrides) -> TriBERT:
    """TriBERT at the CPU-scale size; every deviation from the paper is listed in ``small_config``."""
    return TriBERT(small_config(**overrides))


def tribert_tiny(**overrides) -> TriBERT:
    """TriBERT at the unit-test size; every deviation from the paper is listed in ``tiny_config``."""
    return TriBERT(tiny_config(**overrides))


def build_model(name_or_config: str | ModelConfig, **overrides) -> TriBERT:
    """A TriBERT from a size name ("paper", "small", "tiny") or a ``ModelConfig``."""
    if isinstance(name_or_config, ModelConfig):
        if overrides:
            from dataclasses import replace

            name_or_config = replace(name_or_config, **overrides)
        return TriBERT(name_or_config)
    return TriBERT(model_config(name_or_config, **overrides))


__all__ = ["TriBERT", "TriBERTOutput", "TriBERTEncoding", "TriBERTTransformer",
           "StreamEmbedding", "select_objects", "paper_config", "small_config", "tiny_config",
           "model_config", "SIZES", "tribert_paper", "tribert_small", "tribert_tiny", "build_model"]
