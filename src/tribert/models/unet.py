"""Conditioned attention U-Net separator (paper 3.2.1; Oktay et al. 2018) on [B, 1, F, T] spectrograms.

Structure for ``depth`` = D (paper D = 7; authors' code D = 4)::

    input BatchNorm (Sound-of-Pixels' bn0: the log-magnitude has an arbitrary offset/scale)
    down i = 0..D-1 : conv 4x4 stride 2 -> BN -> LeakyReLU(0.2)  (+ conv 3x3 blocks)   [c_i, F/2^(i+1)]
    bottleneck      : condition fused into the deepest features (``fusion``)
    up i = D-1..1   : 2x2 stride-2 transposed conv -> BN -> ReLU                      [c_(i-1), F/2^i]
                      skip from down i-1, through an additive attention gate, concatenated,
                      conv 3x3 -> BN -> ReLU; optional FiLM from the condition
    head (up 0)     : 2x2 stride-2 transposed conv -> ``out_channels`` mask logits    [Cout, F]

As in Sound-of-Pixels' unet7 the last up-sampling conv writes the output directly, so nothing but
that one conv runs at full resolution (the most expensive resolution on a CPU).

Widths ``c_i = min(base * 2**i, max)``. One strided conv per down level and one upsampling conv
per up level is the paper's "7 convolutions and 7 de-convolutions" (Sound-of-Pixels' unet7 with
attention gates); ``convs_per_level=2`` gives double-conv levels like the authors' code. Up-sampling
is a 2x2 stride-2 transposed conv ("de-convolution", as in the paper and the authors' code) by
default, or ``upsample="bilinear"``: bilinear x2 + 3x3 conv (Sound-of-Pixels), smoother masks at
9x the cost of that layer.

The condition vector (TriBERT: pooled SOS features; baselines: a class one-hot or nothing)
enters at the bottleneck by the authors' early fusion and/or by FiLM at every decoder level
(docs/deviations.md: the CPU-scale recipe needs conditioning at several levels to learn in minutes).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tribert.config.model import FUSIONS, UPSAMPLES


def level_channels(depth: int, base: int, max_channels: int) -> list[int]:
    """Widths of the ``depth`` levels: doubling from ``base``, capped at ``max_channels``."""
    return [min(base * 2 ** i, max_channels) for i in range(depth)]


def conv_bn_act(cin: int, cout: int, act: nn.Module, kernel: int = 3, stride: int = 1) -> list[nn.Module]:
    padding = 1 if kernel in (3, 4) else 0
    return [nn.Conv2d(cin, cout, kernel, stride, padding, bias=False), nn.BatchNorm2d(cout), act]


class AttentionGate(nn.Module):
    """Additive attention gate (Oktay et al. 2018) on a skip connection.

    ``alpha = sigmoid(psi(ReLU(W_g g + W_x x)))``, output ``x * alpha``: the decoder features
    ``g`` decide which time-frequency regions of the encoder skip ``x`` pass through.
    ``g`` and ``x`` have the same resolution here (``g`` is already up-sampled).
    """

    def __init__(self, gate_channels: int, skip_channels: int, inter_channels: int):
        super().__init__()
        self.w_g = nn.Sequential(nn.Conv2d(gate_channels, inter_channels, 1), nn.BatchNorm2d(inter_channels))
        self.w_x = nn.Sequential(nn.Conv2d(skip_channels, inter_channels, 1), nn.BatchNorm2d(inter_channels))
        self.psi = nn.Sequential(nn.Conv2d(inter_channels, 1, 1), nn.BatchNorm2d(1), nn.Sigmoid())

    def forward(self, g: Tensor, x: Tensor) -> Tensor:
        """g [B, Cg, H, W], x [B, Cx, H, W] -> gated x [B, Cx, H, W]."""
        alpha = self.psi(F.relu(self.w_g(g) + self.w_x(x)))  # [B, 1, H, W]
        return x * alpha


class FiLM(nn.Module):
    """Feature-wise linear modulation: ``x * (1 + gamma(c)) + beta(c)`` per channel."""

    def __init__(self, cond_dim: int, channels: int):
        super().__init__()
        self.fc = nn.Linear(cond_dim, 2 * channels)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        """x [B, C, H, W], cond [B, D] -> [B, C, H, W]."""
        gamma, beta = self.fc(cond).chunk(2, dim=-1)  # [B, C] each
        return x * (1 + gamma[:, :, None, None]) + beta[:, :, None, None]


class BottleneckFusion(nn.Module):
    """Inject the condition vector into the bottleneck features ``a`` [B, C, h, w].

    The condition is first projected to C channels (``f``; the authors' code instead made the
    bottleneck exactly as wide as the condition, 3 x 512 = 1536) and broadcast over h x w.

    - ``"attention"``: the authors' self-attention-style early fusion, per pixel:
      ``h = softmax_C(a * f) * f + a``; ``z = MLP(h) + h`` (MLP = 1x1 conv, ReLU, 1x1 conv).
      (The authors' code forms ``a . f`` with ``torch.matmul`` over the two spatial axes, which
      for a spatially constant ``f`` is ``f`` times the sum of ``a`` over time; the per-pixel
      product used here is the reading of the formula that does not mix time frames.)
    - ``"concat"``: ``z = ReLU(BN(conv1x1([a, f])))``.
    """

    def __init__(self, cond_dim: int, channels: int, kind: str = "attention"):
        super().__init__()
        if kind not in ("attention", "concat"):
            raise ValueError(f"unknown bottleneck fusion {kind!r}")
        self.kind = kind
        self.proj = nn.Linear(cond_dim, channels)
        if kind == "attention":
            self.mlp = nn.Sequential(nn.Conv2d(channels, channels, 1), nn.ReLU(inplace=True),
                                     nn.Conv2d(channels, channels, 1))
        else:
            self.mix = nn.Sequential(*conv_bn_act(2 * channels, channels, nn.ReLU(inplace=True), kernel=1))

    def forward(self, a: Tensor, cond: Tensor) -> Tensor:
        """a [B, C, h, w], cond [B, D] -> [B, C, h, w]."""
        f = self.proj(cond)[:, :, None, None].expand_as(a)  # [B, C, h, w]
        if self.kind == "attention":
            h = F.softmax(a * f, dim=1) * f + a
            return self.mlp(h) + h
        return self.mix(torch.cat([a, f], dim=1))


class TimeFiLM(nn.Module):
    """FiLM that varies over time: a guide sequence [B, D, Tg] gives ``gamma, beta`` per channel
    and time frame, ``x * (1 + gamma) + beta`` over every frequency row of that frame."""

    def __init__(self, guide_dim: int, channels: int):
        super().__init__()
        self.conv = nn.Conv1d(guide_dim, 2 * channels, 1)

    def forward(self, x: Tensor, guide: Tensor) -> Tensor:
        """x [B, C, F, T], guide [B, D, Tg] (resampled to T) -> [B, C, F, T]."""
        g = F.interpolate(guide, size=x.shape[-1], mode="linear", align_corners=False)  # [B, D, T]
        gamma, beta = self.conv(g).chunk(2, dim=1)  # [B, C, T] each
        return x * (1 + gamma[:, :, None]) + beta[:, :, None]


class UpLevel(nn.Module):
    """One decoder level: up-sample x2 + conv, gated skip concatenation + conv(s), optional FiLM
    from the condition vector and from a guide sequence."""

    def __init__(self, in_channels: int, out_channels: int, skip_channels: int, gate: bool,
                 convs: int, cond_dim: int, film: bool, upsample: str = "transpose", guide_dim: int = 0):
        super().__init__()
        relu = lambda: nn.ReLU(inplace=True)  # noqa: E731
        if upsample == "transpose":
            self.up = nn.Sequential(nn.ConvTranspose2d(in_channels, out_channels, 2, stride=2, bias=False),
                                    nn.BatchNorm2d(out_channels), relu())
        else:
            self.up = nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                                    *conv_bn_act(in_channels, out_channels, relu()))
        self.gate = (AttentionGate(out_channels, skip_channels, max(skip_channels // 2, 1))
                     if gate and skip_channels else None)
        layers: list[nn.Module] = []
        if skip_channels:
            layers += conv_bn_act(out_channels + skip_channels, out_channels, relu())
        for _ in range(convs - 1):
            layers += conv_bn_act(out_channels, out_channels, relu())
        self.merge = nn.Sequential(*layers)
        self.film = FiLM(cond_dim, out_channels) if film else None
        self.guide_film = TimeFiLM(guide_dim, out_channels) if guide_dim else None

    def forward(self, x: Tensor, skip: Tensor | None, cond: Tensor | None, guide: Tensor | None = None) -> Tensor:
        """x [B, Cin, H, W], skip [B, Cs, 2H, 2W] or None, guide [B, D, Tg] or None -> [B, Cout, 2H, 2W]."""
        u = self.up(x)
        if skip is not None:
            s = self.gate(u, skip) if self.gate is not None else skip
            u = torch.cat([u, s], dim=1)
        u = self.merge(u)
        if self.film is not None:
            u = self.film(u, cond)
        if self.guide_film is not None:
            u = self.guide_film(u, guide)
        return u


class AttentionUNet(nn.Module):
    """Conditioned attention U-Net mapping a spectrogram to mask logits.

    Args:
        in_channels: input channels (1: log-magnitude). out_channels: output maps (1: one mask;
            Sound-of-Pixels uses K components).
        depth: stride-2 levels (paper 7, authors' code 4). F and T must be divisible by 2**depth.
        base_channels, max_channels: level widths ``min(base * 2**i, max)``.
        convs_per_level: 1 = paper/Sound-of-Pixels style, 2 = double-conv levels (authors' code).
        attention_gates: additive attention gates on the skips (False = plain U-Net).
        cond_dim: width of the condition vector; 0 = unconditioned.
        fusion: bottleneck fusion "attention" (authors' early fusion), "concat" or "none".
        film: FiLM from the condition after every decoder level (all but the output conv).
        upsample: "transpose" (2x2 stride-2 transposed conv; paper/code) or "bilinear" (+ 3x3 conv).
        input_norm: BatchNorm on the input spectrogram.
        guide_dim: width of an optional guide sequence [B, D, Tg] (TriBERT: the requested
            performer's motion features) that modulates every decoder level over time; 0 = none.
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 1, depth: int = 7,
                 base_channels: int = 64, max_channels: int = 512, convs_per_level: int = 1,
                 attention_gates: bool = True, cond_dim: int = 0, fusion: str = "attention",
                 film: bool = False, upsample: str = "transpose", input_norm: bool = True, guide_dim: int = 0):
        super().__init__()
        if fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {fusion!r}")
        if upsample not in UPSAMPLES:
            raise ValueError(f"upsample must be one of {UPSAMPLES}, got {upsample!r}")
        if depth < 1 or convs_per_level < 1:
            raise ValueError("depth and convs_per_level must be >= 1")
        if cond_dim == 0:
            fusion, film = "none", False  # nothing to condition on
        self.depth = depth
        self.cond_dim = cond_dim
        self.guide_dim = guide_dim
        ch = level_channels(depth, base_channels, max_channels)
        self.channels = ch
        self.input_norm = nn.BatchNorm2d(in_channels) if input_norm else nn.Identity()

        leaky = lambda: nn.LeakyReLU(0.2, inplace=True)  # noqa: E731
        self.down = nn.ModuleList()
        for i in range(depth):
            cin = in_channels if i == 0 else ch[i - 1]
            layers = conv_bn_act(cin, ch[i], leaky(), kernel=4, stride=2)
            for _ in range(convs_per_level - 1):
                layers += conv_bn_act(ch[i], ch[i], leaky())
            self.down.append(nn.Sequential(*layers))

        self.fusion = BottleneckFusion(cond_dim, ch[-1], fusion) if fusion != "none" else None

        # up[j] undoes down[depth-1-j] for the levels with a skip; the head undoes down[0].
        self.up = nn.ModuleList(
            UpLevel(ch[i], ch[i - 1], ch[i - 1], attention_gates, convs_per_level, cond_dim, film, upsample,
                    guide_dim)
            for i in reversed(range(1, depth)))
        if upsample == "transpose":
            self.head = nn.ConvTranspose2d(ch[0], out_channels, 2, stride=2)
        else:
            self.head = nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                                      nn.Conv2d(ch[0], out_channels, 3, padding=1))

    def forward(self, x: Tensor, cond: Tensor | None = None, guide: Tensor | None = None) -> Tensor:
        """x [B, Cin, F, T], cond [B, cond_dim] (or None when cond_dim = 0), guide [B, guide_dim, Tg]
        (or None when guide_dim = 0) -> logits [B, Cout, F, T]."""
        step = 2 ** self.depth
        if x.shape[-2] % step or x.shape[-1] % step:
            raise ValueError(f"U-Net input {tuple(x.shape[-2:])} must be divisible by 2**depth = {step}")
        if self.cond_dim and (cond is None or cond.shape != (x.shape[0], self.cond_dim)):
            got = None if cond is None else tuple(cond.shape)
            raise ValueError(f"U-Net condition must be [{x.shape[0]}, {self.cond_dim}], got {got}")
        if self.guide_dim and (guide is None or guide.shape[:2] != (x.shape[0], self.guide_dim)):
            got = None if guide is None else tuple(guide.shape)
            raise ValueError(f"U-Net guide must be [{x.shape[0]}, {self.guide_dim}, T], got {got}")
        h = self.input_norm(x)
        skips = []
        for down in self.down:
            h = down(h)  # [B, c_i, F/2^(i+1), T/2^(i+1)]
            skips.append(h)
        if self.fusion is not None:
            h = self.fusion(h, cond)
        skips = skips[:-1]  # the deepest level is the bottleneck itself, not a skip
        for up in self.up:
            h = up(h, skips.pop(), cond, guide)  # [B, c_(i-1), F/2^i, T/2^i]
        return self.head(h)  # [B, Cout, F, T]


__all__ = ["AttentionUNet", "FUSIONS", "UPSAMPLES", "AttentionGate", "FiLM", "TimeFiLM", "BottleneckFusion", "UpLevel",
           "level_channels"]
