"""TriBERT models. Public API::

    from tribert.models import build_model, build_separator, tribert_small, ModelConfig

    model = build_model("small")          # TriBERT: "paper", "small", "tiny", or a ModelConfig
    model = build_separator(config)       # any separator: config.kind (a ModelConfig) names it
    out = model(frames, pose, mix_logmag, objects)
    out.mask_logits                       # [B, S, 1, F, T]

    enc = model.encode(frames, pose, mix_logmag)   # encode once ...
    masks = model.separate(enc, objects)            # ... separate several objects
"""

from tribert.config.model import ModelConfig
from tribert.models.factory import SEPARATORS, build_separator
from tribert.models.tribert import (
    SIZES,
    TriBERT,
    TriBERTEncoding,
    TriBERTOutput,
    build_model,
    model_config,
    paper_config,
    small_config,
    tiny_config,
    tribert_paper,
    tribert_small,
    tribert_tiny,
)
from tribert.models.unet import AttentionUNet

__all__ = ["ModelConfig", "SEPARATORS", "build_separator", "TriBERT", "TriBERTOutput", "TriBERTEncoding", "AttentionUNet", "SIZES",
           "build_model", "model_config", "paper_config", "small_config", "tiny_config",
           "tribert_paper", "tribert_small", "tribert_tiny"]
