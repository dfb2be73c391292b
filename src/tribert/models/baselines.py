"""Comparison baselines, trained on the same data and loop as TriBERT.

Every baseline implements the one separator interface of :mod:`tribert.models.base`::

    model = build_separator(config)   # config.kind: "sound_of_pixels", "music_gesture", "audio_only"
    out = model(frames, pose, mix_logmag, objects, labels, source_labels)
    out.mask_logits                                          # [V, S, 1, F, T]

and takes every size from the same ``ModelConfig`` as TriBERT (U-Net depth / widths / convs per
level, FiLM and bottleneck fusion, visual trunk width, ST-GCN channels, input sizes), so at a
given named size the separators differ only in what conditions them:

============================  ===================================================================
``SoundOfPixels``             the video's K-channel max-pooled visual vector weights K U-Net
                              component maps (Zhao et al. 2018); no notion of persons
``MusicGestureStyle``         person j's ST-GCN pose feature + a global visual feature, fused
                              into the U-Net (Gan et al. 2020, re-implemented)
``AudioOnlyUNet``             the class one-hot of the requested source (no frames, no pose)
============================  ===================================================================
"""

from __future__ import annotations

import warnings
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tribert.errors import ConfigError
from tribert.models.base import (SeparatorOutput, check_objects, check_range, check_shape, select_objects,
                                 separate_sources)
from tribert.config.model import ModelConfig
from tribert.models.pose import STGCN, pose_presence, prepare_pose
from tribert.models.resnet import ResNet, build_resnet, load_resnet_weights
from tribert.models.unet import AttentionUNet


# ---------------------------------------------------------------------------------------------
# Shared pieces
# ---------------------------------------------------------------------------------------------

def _unet(config: ModelConfig, out_channels: int = 1, cond_dim: int = 0,
          attention_gates: Optional[bool] = None) -> AttentionUNet:
    """The U-Net at the config's size (depth, widths, convs per level, fusion, FiLM).

    ``attention_gates`` None keeps the config's switch; ``cond_dim`` 0 builds an unconditioned net.
    """
    return AttentionUNet(
        in_channels=1, out_channels=out_channels, depth=config.unet_depth,
        base_channels=config.unet_base_channels, max_channels=config.unet_max_channels,
        convs_per_level=config.unet_convs_per_level,
        attention_gates=config.attention_gates if attention_gates is None else attention_gates,
        cond_dim=cond_dim, fusion=config.fusion, film=config.film, upsample=config.unet_upsample)


def _trunk(config: ModelConfig, arch: str, dilate_last: bool = False) -> ResNet:
    """A ResNet feature trunk (no classifier) at the config's stem width.

    The config's ``visual_layers`` describe the config's own backbone, so they are used only when
    ``arch`` is that backbone; otherwise ``arch``'s standard depths are used. ``config.visual_weights``
    is loaded under the same condition (a checkpoint of another architecture cannot fit).
    """
    same = arch == config.visual_backbone
    trunk = build_resnet(arch, width=config.visual_width,
                         layers=(config.visual_layers or None) if same else None,
                         replace_stride_with_dilation=(False, False, dilate_last), num_classes=0)
    if config.visual_weights:
        if same:
            load_resnet_weights(trunk, config.visual_weights)
        else:
            warnings.warn(f"visual_weights ({config.visual_weights}) are for a {config.visual_backbone} "
                          f"trunk; this baseline's {arch} trunk starts from random weights", stacklevel=3)
    return trunk


def _check_video_inputs(config: ModelConfig, frames: Tensor, mix_logmag: Tensor, objects: Tensor) -> int:
    """Shape checks shared by the visual baselines; returns the number of video items V."""
    check_shape("mix_logmag", mix_logmag, (None, 1, None, None))
    nv = mix_logmag.shape[0]
    check_shape("frames", frames, (nv, config.num_frames, 3, None, None))
    check_objects(objects, nv, config.num_objects)
    return nv


# ---------------------------------------------------------------------------------------------
# Sound of Pixels
# ---------------------------------------------------------------------------------------------

class SoundOfPixels(nn.Module):
    """Sound of Pixels (Zhao et al., ECCV 2018; github.com/hangzhaomit/Sound-of-Pixels).

    Re-implemented from the public code (``resnet18dilated`` frame net, ``unet7`` sound net,
    ``linear`` synthesizer, ``img_activation=sigmoid``, ``sound_activation=no``, max-pooled frames):

    - visual net: ResNet-18 trunk whose last stage is dilated instead of strided (output stride 16,
      SoP's ``dilate_scale=16``), a 3x3 conv to K channels (SoP ``num_channels`` = 32), a max-pool
      over the frames and all positions, and a sigmoid -> one K-vector ``v`` per video;
    - audio net: a plain U-Net (attention gates off, unconditioned) from the mixture's log-magnitude
      to K component maps ``a_k`` (no activation);
    - synthesizer: ``mask_logit = sum_k s_k v_k a_k + b`` with a learnable per-channel scale ``s``
      and one scalar bias ``b`` (SoP's ``InnerProd``); the loss applies the output sigmoid.

    Differences from the original: the trunk width/depth and the U-Net depth/widths/convs per level
    come from the ``ModelConfig`` (at the paper size: a standard ResNet-18 and a 7-level
    64..512 U-Net, i.e. SoP's own sizes); the U-Net up-samples bilinearly + 3x3 conv like SoP but is
    the shared :class:`AttentionUNet` with its gates off; the trunk is randomly initialised unless
    ``config.visual_weights`` holds a ResNet-18 checkpoint (SoP started from ImageNet weights).

    Known limitation (kept on purpose: it is the baseline's): SoP has no notion of persons or
    objects, so every object slot of a video gets the same whole-video mask; on a duet it cannot
    tell the two players apart.

    Args:
        config: the shared model sizes.
        num_components: K, visual channels = U-Net output maps (SoP: 32).
    """

    def __init__(self, config: ModelConfig, num_components: int = 32):
        super().__init__()
        if num_components < 1:
            raise ConfigError(f"num_components must be >= 1, got {num_components}")
        config.validate()
        self.config = config
        self.trunk = _trunk(config, "resnet18", dilate_last=True)
        self.visual_proj = nn.Conv2d(self.trunk.out_channels, num_components, kernel_size=3, padding=1)
        self.sound = _unet(config, out_channels=num_components, cond_dim=0, attention_gates=False)
        self.scale = nn.Parameter(torch.ones(num_components))  # synthesizer: per-channel scale
        self.bias = nn.Parameter(torch.zeros(1))  # ... and one bias

    def visual_vector(self, frames: Tensor) -> Tensor:
        """frames [V, K_frames, 3, H, W] -> the video's component weights v [V, K] in (0, 1)."""
        v, k = frames.shape[:2]
        x = self.visual_proj(self.trunk.features(frames.flatten(0, 1)))  # [V*Kf, K, H/16, W/16]
        x = x.unflatten(0, (v, k)).amax(dim=(1, 3, 4))  # [V, K]: max over frames and positions
        return torch.sigmoid(x)

    def forward(self, frames: Tensor, pose: Optional[Tensor], mix_logmag: Tensor, objects: Tensor,
                labels: Optional[Tensor] = None, source_labels: Optional[Tensor] = None,
                valid: Optional[Tensor] = None) -> SeparatorOutput:
        """See :mod:`tribert.models.base`. ``pose``, ``labels`` and ``source_labels`` are not used."""
        c = self.config
        nv = _check_video_inputs(c, frames, mix_logmag, objects)
        vis = self.visual_vector(frames) * self.scale  # [V, K]
        comps = self.sound(mix_logmag)  # [V, K, F, T]
        logits = torch.einsum("vk,vkft->vft", vis, comps)[:, None] + self.bias  # [V, 1, F, T]
        s = objects.shape[1]
        # Every object slot of the video gets the whole-video mask (no notion of persons).
        return SeparatorOutput(mask_logits=logits[:, None].expand(nv, s, *logits.shape[1:]))


# ---------------------------------------------------------------------------------------------
# Music Gesture
# ---------------------------------------------------------------------------------------------

class MusicGestureStyle(nn.Module):
    """A Music-Gesture-style separator (Gan et al., CVPR 2020; no public code: re-implemented).

    What is re-implemented: the paper's idea that the *body and hand motion* of a player, together
    with the global visual context of the video, conditions a U-Net on the mixture spectrogram,
    one separation per player:

    - pose: an ST-GCN over the 68-keypoint body + hands skeleton (Music Gesture: body + hand
      keypoints through a graph network), averaged over time and joints -> one feature per person;
    - visual context: the config's ResNet trunk on every frame, averaged over positions and
      frames -> one feature per video (Music Gesture: ResNet-50 appearance features);
    - condition of a requested source: [person j's pose feature, video feature] (each
      layer-normalised so that neither dominates at initialisation); for object -1
      (the whole video) the mean of the pose features over the persons present (any keypoint with
      confidence > 0; all slots when nobody is detected);
    - separator: the same U-Net as TriBERT at the config's size (attention gates, bottleneck
      fusion and/or FiLM as configured), the condition entering through its fusion / FiLM.

    Differences from the paper: Music Gesture's context-aware graph network (a dedicated
    body-hand hierarchy with attention) is replaced by a plain ST-GCN (as the TriBERT authors did
    for their re-implementation: "extracting pose features using Graph CNN"); its transformer-style
    audio-visual fusion module at the bottleneck is replaced by the shared U-Net's fusion / FiLM;
    pose and visual features are pooled into vectors (no temporal alignment with the audio); no
    pre-trained weights. A person slot with no keypoints at all gives the ST-GCN feature of an
    empty skeleton.

    Args:
        config: the shared model sizes (``num_objects`` = person slots P of the pose input).
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        config.validate()
        self.config = config
        self.stgcn = STGCN(3, config.pose_channels, num_persons=config.num_objects)
        self.trunk = _trunk(config, config.visual_backbone)
        # Each part is layer-normalised before the concatenation: at initialisation the pooled
        # ST-GCN feature is ~20x smaller than the pooled ResNet feature and would barely count.
        self.pose_norm = nn.LayerNorm(self.stgcn.out_channels)
        self.video_norm = nn.LayerNorm(self.trunk.out_channels)
        self.cond_dim = self.stgcn.out_channels + self.trunk.out_channels
        self.separator = _unet(config, out_channels=1, cond_dim=self.cond_dim)

    def person_features(self, pose: Tensor) -> Tensor:
        """pose [V, P, Tp, 68, 3] -> one (layer-normalised) ST-GCN feature per person slot [V, P, C_pose]."""
        return self.pose_norm(self.stgcn(prepare_pose(pose)).mean(dim=(3, 4)))  # mean over time and joints

    def video_feature(self, frames: Tensor) -> Tensor:
        """frames [V, K, 3, H, W] -> (layer-normalised) global visual feature [V, C_vis]."""
        v, k = frames.shape[:2]
        x = self.trunk.features(frames.flatten(0, 1)).mean(dim=(2, 3))  # [V*K, C_vis]
        return self.video_norm(x.unflatten(0, (v, k)).mean(dim=1))  # [V, C_vis]

    def forward(self, frames: Tensor, pose: Tensor, mix_logmag: Tensor, objects: Tensor,
                labels: Optional[Tensor] = None, source_labels: Optional[Tensor] = None,
                valid: Optional[Tensor] = None) -> SeparatorOutput:
        """See :mod:`tribert.models.base`. ``labels`` and ``source_labels`` are not used."""
        c = self.config
        nv = _check_video_inputs(c, frames, mix_logmag, objects)
        check_shape("pose", pose, (nv, c.num_objects, None, 68, 3))
        persons = self.person_features(pose)  # [V, P, Cp]
        person = select_objects(persons, objects, pose_presence(pose))  # [V, S, Cp]
        video = self.video_feature(frames)  # [V, Cv]
        cond = torch.cat([person, video[:, None].expand(-1, person.shape[1], -1)], dim=-1)  # [V, S, Cp+Cv]
        return SeparatorOutput(mask_logits=separate_sources(self.separator, mix_logmag, cond, valid))


# ---------------------------------------------------------------------------------------------
# Audio only
# ---------------------------------------------------------------------------------------------

class AudioOnlyUNet(nn.Module):
    """The separator U-Net conditioned only on the class of the requested source.

    Not a published model: the control that tells what the visual streams add. The condition is
    the one-hot of ``source_labels[v, s]``; where that is -1 (unknown or several classes, e.g.
    the whole-video target of a duet) it is the video's multi-hot ``labels[v]`` divided by its
    sum (all zeros if the video has no label). The U-Net is TriBERT's at the config's size
    (attention gates, bottleneck fusion and/or FiLM as configured); frames and pose are ignored.
    Note that it is given the ground-truth class, which a visual model must infer: on mixtures
    of two different classes it is an oracle-class upper reference rather than a weak baseline,
    and on same-class duets it cannot tell the two players apart.

    Args:
        config: the shared model sizes (``num_classes`` = width of the one-hot).
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        config.validate()
        self.config = config
        self.separator = _unet(config, out_channels=1, cond_dim=config.num_classes)

    def condition(self, labels: Tensor, source_labels: Tensor) -> Tensor:
        """labels [V, C] multi-hot, source_labels [V, S] long (-1 unknown) -> condition [V, S, C]."""
        c = self.config.num_classes
        one_hot = F.one_hot(source_labels.clamp_min(0).long(), c).float()  # [V, S, C]
        video = labels.float() / labels.float().sum(dim=1, keepdim=True).clamp_min(1e-8)  # [V, C]
        return torch.where((source_labels < 0)[..., None], video[:, None].expand_as(one_hot), one_hot)

    def forward(self, frames: Optional[Tensor], pose: Optional[Tensor], mix_logmag: Tensor, objects: Tensor,
                labels: Optional[Tensor] = None, source_labels: Optional[Tensor] = None,
                valid: Optional[Tensor] = None) -> SeparatorOutput:
        """See :mod:`tribert.models.base`. ``frames``, ``pose`` and ``objects`` values are not used."""
        c = self.config
        check_shape("mix_logmag", mix_logmag, (None, 1, None, None))
        nv = mix_logmag.shape[0]
        check_objects(objects, nv, c.num_objects)
        check_shape("labels", labels, (nv, c.num_classes))
        check_shape("source_labels", source_labels, tuple(objects.shape))
        check_range("source_labels", source_labels, -1, c.num_classes - 1)
        cond = self.condition(labels, source_labels).to(mix_logmag.dtype)  # [V, S, C]
        return SeparatorOutput(mask_logits=separate_sources(self.separator, mix_logmag, cond, valid))


__all__ = ["SoundOfPixels", "MusicGestureStyle", "AudioOnlyUNet"]
