"""The named model sizes: ``paper``, ``small`` (CPU scale) and ``tiny`` (unit tests).

Each factory returns the ``ModelConfig`` of its size; keyword overrides change single fields. A
run config names its size as ``model.size`` and may change single fields under ``model:``
(:mod:`tribert.config` says in which order the values are applied).
"""

from __future__ import annotations

from tribert.config.model import ModelConfig
from tribert.errors import ConfigError


def paper_config(**overrides) -> ModelConfig:
    """The paper's size: ``ModelConfig()`` defaults (see the field comments for paper vs code)."""
    return ModelConfig(**{"size": "paper", **overrides})


# What lets TriBERT learn its condition in CPU minutes (measured: benchmarks/learning_curves.py
# --set ablation, README "Does TriBERT learn its condition?"): a class head on each source's condition, whose predicted
# class posteriors are all the U-Net sees, and in training the U-Net is shown the true class in
# their place (teacher forcing 1.0), so it learns class-conditioned masks from step 0 as the
# audio-only control does while the encoders learn to recognise; a layer-normalised condition, a
# solo conditioned on its one performer, no training-time noise (dropout, token masking), and the
# ViLBERT co-attention layout with WSDDN heads over the frame tokens (the authors' layout scored
# 1.1 dB lower at 500 steps).
LEARNS_FAST = dict(
    condition_norm="layernorm", whole_video_condition="present", condition_classes="posteriors_only",
    class_teacher_forcing=1.0,
    dropout=0.0, attention_dropout=0.0, token_mask_prob=0.0, visual_dropout=0.0,
    coattention_layout="tokens", heads_include_sos=False,
)


def small_config(**overrides) -> ModelConfig:
    """CPU-scale size: meant to train to useful separation on SynthMUSIC in minutes on 2 cores.

    Deviations from the paper (measured on 2 CPU cores, see docs/deviations.md: shorter crops, a smaller spectrogram
    and conditioning at several decoder levels are what lets a U-Net learn in minutes; every width
    below was cut until a training step at batch 12 x 2 videos fitted a CPU budget):

    - spectrogram 128 x 128 (3 s crop -> 128 STFT frames, 128-row log-frequency warp) instead of
      256 x 256 (6 s); U-Net depth 6 (2 x 2 bottleneck) with 8..128 channels instead of 7 levels
      of 64..512 (16..128, the width of that measurement, costs 2.2x the separator time); FiLM
      from the condition at every decoder level (paper: bottleneck fusion only; the authors'
      bottleneck fusion is kept as well).
    - visual net: narrow ResNet-18 trunk (stem width 8) on 64 x 64 frames (2 x 2 attention maps),
      128-d tokens, instead of ResNet-50 at 224 x 224 (7 x 7 maps) with 1024-d tokens.
    - pose: ST-GCN with 3 layers of 8, 16, 16 channels, temporal strides 2, 1, 2, over T = 32 pose
      frames, 128-d tokens, instead of 10 layers of 64..256 over T = 256 with 1024-d tokens.
    - audio: VGGish with 4..64 channels and a 64-d vector instead of 64..512 and 512-d.
    - transformer: 2 layers (co-attention after both), width 128 in every stream (paper 1024 /
      1024 / 512), 4 heads (paper 8), FFN 256 (code 1024), co-attention width 128 (code 512),
      SOS pooler 64 per stream (code 512).
    - condition (``LEARNS_FAST``, each change measured in the README's ablation): a layer-normalised
      condition (authors' code: sigmoid), a solo conditioned on its present performer (code: the
      mean over both object slots), a class head on each source's condition whose posteriors are
      what the U-Net sees, the true class in their place in training (paper: the SOS outputs
      themselves), and no dropout, attention dropout, visual dropout or token masking (paper:
      0.1 / 0.1 / 0.2 / 15%).
    - co-attention in the ViLBERT layout (full-width keys/values on the token axis, after
      self-attention; code: half-width on the feature axis, before) and WSDDN heads over the frame
      tokens only (code: with the SOS position).
    """
    base = dict(
        size="small", frame_size=64, pose_frames=32, spec_bins=128, spec_frames=128,
        visual_backbone="resnet18", visual_width=8, visual_dim=128,
        pose_channels=(8, 16, 16), pose_strides=(2, 1, 2), pose_dim=128,
        vggish_channels=(4, 8, 16, 32, 64), audio_dim=64,
        vision_hidden=128, pose_hidden=128, audio_hidden=128, num_layers=2, num_heads=4, ffn_dim=256,
        coattention_dim=128, sos_pool_dim=64,
        unet_depth=6, unet_base_channels=8, unet_max_channels=128, film=True,
        **LEARNS_FAST,
    )
    base.update(overrides)
    return ModelConfig(**base)


def tiny_config(**overrides) -> ModelConfig:
    """Unit-test size: forward + backward in a fraction of a second on one CPU thread.

    Deviations from the paper: 32 x 32 frames, ResNet-18 with stem width 4 and one block per
    stage; ST-GCN of 2 layers x 8 channels over T = 8; VGGish 4..16 channels; 32 x 32 spectrogram;
    transformer 2 layers of width 16 (pose 16, audio 8), 2 heads, FFN 32, co-attention width 16,
    SOS pooler 8; U-Net depth 4 with 4..16 channels and FiLM; the condition of the small size
    (``LEARNS_FAST``). Class count, K = 3 frames, 2 objects and the other switches are the paper's.
    """
    base = dict(
        size="tiny", frame_size=32, pose_frames=8, spec_bins=32, spec_frames=32,
        visual_backbone="resnet18", visual_width=4, visual_layers=(1, 1, 1, 1), visual_dim=16,
        pose_channels=(8, 8), pose_dim=16,
        vggish_channels=(4, 8, 16, 16, 16), audio_dim=8,
        vision_hidden=16, pose_hidden=16, audio_hidden=8, num_layers=2, num_heads=2, ffn_dim=32,
        coattention_dim=16, sos_pool_dim=8,
        unet_depth=4, unet_base_channels=4, unet_max_channels=16, film=True,
        **LEARNS_FAST,
    )
    base.update(overrides)
    return ModelConfig(**base)


SIZES = {"paper": paper_config, "small": small_config, "tiny": tiny_config}


def model_config(size: str, **overrides) -> ModelConfig:
    """The ``ModelConfig`` of a named size ("paper", "small", "tiny") with field overrides."""
    if size not in SIZES:
        raise ConfigError(f"unknown model size {size!r} (choose one of {', '.join(SIZES)})")
    return SIZES[size](**overrides)


__all__ = ["paper_config", "small_config", "tiny_config", "model_config", "SIZES", "LEARNS_FAST"]
