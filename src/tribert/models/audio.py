"""The audio encoder: a VGGish-style CNN over the log-frequency mixture spectrogram -> one vector.

Paper section 3.2 "Audio Representations": "we use a VGGish Network [Hershey et al. 2017] to
extract global features" from the 1 x 256 x 256 log-frequency log-magnitude of the mixture; the
vector is repeated to form the audio token sequence (done by the transformer).

VGGish is blocks of 3x3 conv + ReLU, each block ending in a 2x2 max-pool: 64 | 128 | 256, 256 |
512, 512 (then fully connected layers for its 96 x 64 log-mel patches). Here the default adds a
fifth block of one 512 conv, because the input is ~10x larger than VGGish's patch; the seven convs
(64, 128, 256, 256, 512, 512, 512) are exactly those of the authors' ``vggish`` module. The
authors pooled after every conv (7 pools, 256 -> 2 x 2) and flattened 2 x 2 x 512 into
``Linear(2048, 512)``; we pool per block (5 pools, 256 -> 8 x 8), average globally and apply
``Linear(512, out_dim)``, which works for any input size. Pools round up (``ceil_mode``), so
inputs as small as 16 x 16 (even 1 x 1) keep a non-empty map.

Two additions that do not exist in VGGish, both switchable: a BatchNorm on the input (the log
magnitudes are far from zero-mean, unit-variance; Sound-of-Pixels' U-Net does the same) and
optional BatchNorm after each conv (off by default, as in VGGish).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class VGGishEncoder(nn.Module):
    """VGGish-style CNN -> global average pooling -> linear.

    Args:
        in_channels: spectrogram channels (1).
        channels: output width of each block (default 64, 128, 256, 512, 512).
        out_dim: size of the output vector (paper: 512, the audio stream width).
        convs_per_block: 3x3 convs in each block; None = VGGish's pattern 1, 1, 2, 2, then 1 for
            every further block (5 blocks: 1, 1, 2, 2, 1).
        batch_norm: BatchNorm after every conv (not in VGGish).
        input_norm: BatchNorm on the input spectrogram.

    Shapes:
        spec [B, in_channels, F, T] (paper: [B, 1, 256, 256]) -> [B, out_dim].
    """

    def __init__(self, in_channels: int = 1, channels: Sequence[int] = (64, 128, 256, 512, 512), out_dim: int = 512,
                 convs_per_block: Sequence[int] | None = None, batch_norm: bool = False, input_norm: bool = True):
        super().__init__()
        if convs_per_block is None:
            convs_per_block = ((1, 1, 2, 2) + (1,) * len(channels))[:len(channels)]
        if len(convs_per_block) != len(channels):
            raise ValueError("convs_per_block needs one entry per block of channels")
        self.input_norm = nn.BatchNorm2d(in_channels) if input_norm else nn.Identity()
        layers: list[nn.Module] = []
        width = in_channels
        for out_ch, n_convs in zip(channels, convs_per_block):
            for _ in range(n_convs):
                layers.append(nn.Conv2d(width, out_ch, kernel_size=3, padding=1))
                if batch_norm:
                    layers.append(nn.BatchNorm2d(out_ch))
                layers.append(nn.ReLU(inplace=True))
                width = out_ch
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2, ceil_mode=True))
        self.features = nn.Sequential(*layers)
        self.proj = nn.Linear(width, out_dim)

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        x = self.features(self.input_norm(spec))  # [B, C, ceil(F/2^n), ceil(T/2^n)], n blocks
        x = x.mean(dim=(2, 3))  # [B, C] global average pooling
        return self.proj(x)  # [B, out_dim]
