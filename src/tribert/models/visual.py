"""The weakly supervised visual segmentation net that turns video frames into object tokens.

Paper section 3.2 "Visual Representations" and Figure 2: each frame goes through a ResNet trunk and
a 3x3 conv to the spatial features V_e [feature_dim, h, w]. A decoupled spatial attention (Zhang et
al., "Decoupled spatial neural attention for weakly supervised semantic segmentation", the paper's
[54]) then computes, per class c,

    expansive map      S_E^c = alpha^c = lambda^c / mean_ij(lambda^c),
                       lambda^c = F(W_c^T V_e(:, i, j) + b_c)        (Eq. 1-2, F = softplus)
    discriminative map S_D^c = U_c^T V_e(:, i, j) + d_c              (a 1x1 conv: class logits per pixel)
    attention          A_m^c = S_E^c * S_D^c
    class score        score^c = mean_ij A_m^c = sum_ij (lambda^c / sum lambda^c) * S_D^c.

So a score is the expansive-attention-weighted average of the discriminative logits: it is a logit
(train it with ``BCEWithLogits`` against the video's multi-hot labels). The reading follows [54],
where the spatially normalised expansive map weights the discriminative score map. Eq. 2 divides
by the spatial *sum*; we divide by the *mean* (alpha scaled by h*w) so that the "spatial average
pooling" the paper names gives exactly that weighted average, whatever the map size.

The top ``num_objects`` classes of each frame (by score) pick their attention maps A_m^c, which
pool V_e into one token each: token = mean_ij A_m^c(i, j) V_e(:, i, j) (the authors' code:
``avg_pool(A_m[top] * V_e)``). The maps A_m double as sound-localisation heat maps.

Where the authors' code differs (``attention="code"``): the expansive branch is dropout -> 1x1
conv -> dropout -> ReLU -> 1x1 conv (C->C) -> ReLU -> softmax over *classes* (no spatial
normalisation; the reading "S_E = softmax over classes"), and the class scores feed only the
top-2 selection (no loss on them). The default is the paper's equations (``attention="paper"``).
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from tribert.models.resnet import build_resnet, load_resnet_weights


class VisualOutput(NamedTuple):
    """What ``VisualSegmentationNet`` returns (B videos, K frames, C classes, h x w feature map)."""

    tokens: torch.Tensor  # [B, K, num_objects, feature_dim] pooled object features
    class_scores: torch.Tensor  # [B, K, C] per-frame class logits (for BCEWithLogits)
    top_classes: torch.Tensor  # [B, K, num_objects] long, classes of the tokens, best first
    attention: torch.Tensor  # [B, K, C, h, w] A_m = S_E * S_D (sound-localisation heat maps)
    features: torch.Tensor  # [B, K, feature_dim, h, w] V_e


class VisualSegmentationNet(nn.Module):
    """Frames -> object tokens through a ResNet trunk and decoupled spatial attention.

    Args:
        num_classes: C, the instrument classes (MUSIC21: 21).
        backbone: "resnet50" (paper) or "resnet18".
        backbone_width: stem width of the ResNet (torchvision: 64); smaller for tiny configs.
        backbone_layers: blocks per ResNet stage; None keeps the standard depths.
        feature_dim: channels of V_e after the 3x3 conv (paper: 1024).
        num_objects: tokens per frame, the top-scoring classes (paper: 2).
        dropout: the two dropouts of the expansive detector (authors' code: 0.2).
        attention: "paper" (Eq. 1-2, spatially normalised softplus) or "code" (authors' code,
            softmax over classes); see the module docstring.
        backbone_weights: optional torchvision-style ResNet checkpoint file to start from.

    Shapes:
        frames [B, K, 3, H, W] (ImageNet-normalised; H, W divisible by 32) -> ``VisualOutput`` with
        h = H/32, w = W/32 (paper: K=3, 224x224 -> 7x7, tokens [B, 3, 2, 1024]).
    """

    def __init__(self, num_classes: int = 21, backbone: str = "resnet50", backbone_width: int = 64,
                 backbone_layers: tuple[int, ...] | None = None, feature_dim: int = 1024, num_objects: int = 2,
                 dropout: float = 0.2, attention: str = "paper", backbone_weights: str | Path | None = None):
        super().__init__()
        if not 1 <= num_objects <= num_classes:
            raise ValueError(f"num_objects must be in 1..num_classes, got {num_objects}")
        if attention not in ("paper", "code"):
            raise ValueError(f"attention must be 'paper' or 'code', got {attention!r}")
        self.num_objects = num_objects
        self.attention_variant = attention

        self.backbone = build_resnet(backbone, width=backbone_width, layers=backbone_layers, num_classes=0)
        if backbone_weights is not None:
            load_resnet_weights(self.backbone, backbone_weights)
        self.conv = nn.Conv2d(self.backbone.out_channels, feature_dim, kernel_size=3, padding=1)

        expansive = [nn.Dropout(dropout), nn.Conv2d(feature_dim, num_classes, 1), nn.Dropout(dropout)]
        if attention == "paper":
            # softplus keeps lambda > 0, so the spatial normalisation never divides by zero.
            expansive += [nn.Softplus()]
        else:
            expansive += [nn.ReLU(), nn.Conv2d(num_classes, num_classes, 1), nn.ReLU()]
        self.expansive = nn.Sequential(*expansive)
        self.discriminative = nn.Conv2d(feature_dim, num_classes, 1)

    def forward(self, frames: torch.Tensor) -> VisualOutput:
        B, K = frames.shape[:2]
        x = frames.flatten(0, 1)  # [B*K, 3, H, W]: every frame on its own
        v = self.conv(self.backbone.features(x))  # [B*K, D, h, w] = V_e
        h, w = v.shape[-2:]

        lam = self.expansive(v)  # [B*K, C, h, w]
        if self.attention_variant == "paper":
            s_e = lam / lam.mean(dim=(2, 3), keepdim=True).clamp_min(1e-12)  # spatial mean 1 per class
        else:
            s_e = lam.softmax(dim=1)  # sums to 1 over classes at every pixel
        s_d = self.discriminative(v)  # [B*K, C, h, w] per-pixel class logits
        a_m = s_e * s_d  # [B*K, C, h, w]
        scores = a_m.mean(dim=(2, 3))  # [B*K, C] spatial average pooling

        # The top classes pick their attention maps; the choice itself carries no gradient.
        top = scores.detach().topk(self.num_objects, dim=1).indices  # [B*K, k]
        maps = a_m.gather(1, top[:, :, None, None].expand(-1, -1, h, w))  # [B*K, k, h, w]
        tokens = torch.einsum("nkhw,ndhw->nkd", maps, v) / (h * w)  # [B*K, k, D] = mean(A_m^c * V_e)

        return VisualOutput(
            tokens=tokens.unflatten(0, (B, K)),  # [B, K, k, D]
            class_scores=scores.unflatten(0, (B, K)),  # [B, K, C]
            top_classes=top.unflatten(0, (B, K)),  # [B, K, k]
            attention=a_m.unflatten(0, (B, K)),  # [B, K, C, h, w]
            features=v.unflatten(0, (B, K)),  # [B, K, D, h, w]
        )
