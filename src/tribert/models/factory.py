"""``build_separator(config)``: the one way to build a separator, TriBERT or a baseline.

``config.kind`` names the class, every other field of the ``ModelConfig`` sizes it::

    from tribert.config import model_config
    model = build_separator(model_config("small"))                      # TriBERT-small
    model = build_separator(model_config("small", kind="audio_only"))   # the audio-only U-Net
"""

from __future__ import annotations

from torch import nn

from tribert.config.model import ModelConfig
from tribert.errors import ConfigError
from tribert.models.baselines import AudioOnlyUNet, MusicGestureStyle, SoundOfPixels
from tribert.models.tribert import TriBERT

SEPARATORS: dict[str, type[nn.Module]] = {
    "tribert": TriBERT,
    "sound_of_pixels": SoundOfPixels,
    "music_gesture": MusicGestureStyle,
    "audio_only": AudioOnlyUNet,
}


def build_separator(config: ModelConfig) -> nn.Module:
    """The separator ``config.kind``, sized by ``config``."""
    if config.kind not in SEPARATORS:
        raise ConfigError(f"unknown separator {config.kind!r} (choose one of {', '.join(SEPARATORS)})")
    return SEPARATORS[config.kind](config)


__all__ = ["SEPARATORS", "build_separator"]
