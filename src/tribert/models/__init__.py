"""TriBERT models. Public API::

    from tribert.models import build_model, tribert_small, ModelConfig

    model = build_model("small")          # or "paper", "tiny", or a ModelConfig
    out = model(frames, pose, mix_logmag, objects)
    out.mask_logits                       # [B, S, 1, F, T]

    enc = model.encode(frames, pose, mix_logmag)   # encode once ...
    masks = model.separate(enc, objects)            # ... separate several objects
"""

from tribert.models.config import ModelConfig
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

__all__ = ["ModelConfig", "TriBERT", "TriBERTOutput", "TriBERTEncoding", "AttentionUNet", "SIZES",
           "build_model", "model_config", "paper_config", "small_config", "tiny_config",
           "tribert_paper", "tribert_small", "tribert_tiny"]
