"""Audio front-end: resample, crop, STFT, log-frequency warp, masks, iSTFT.

Shapes for the paper's defaults (AudioConfig): a crop of L = 65535 samples at 11025 Hz gives an STFT
of F = 512 bins x T = 256 frames; the networks see the magnitude warped to a log-frequency scale of
256 x 256. A predicted mask on the warped grid is mapped back to the 512 linear bins, multiplied
with the mixture magnitude, given the mixture phase and inverted.

All torch functions take batches, run on CPU and GPU, and are differentiable.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tribert.config import AudioConfig


def resample(wav: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Resample mono float audio [N] with soxr (high quality). Returns float32 [N * sr_out / sr_in]."""
    wav = np.asarray(wav, dtype=np.float32)
    if int(sr_in) == int(sr_out):
        return wav
    import soxr

    return soxr.resample(wav, int(sr_in), int(sr_out), quality="HQ").astype(np.float32)


def crop(wav: np.ndarray, length: int, offset: int | None = None,
         rng: np.random.Generator | None = None) -> tuple[np.ndarray, int]:
    """Take ``length`` samples from ``wav`` [N].

    ``offset`` given: start there. Else with ``rng``: a random start (training). Else: centred
    (test). Audio shorter than ``length`` is zero-padded at the end. Returns (segment, offset).
    """
    n = len(wav)
    if offset is None:
        slack = max(n - length, 0)
        offset = int(rng.integers(0, slack + 1)) if rng is not None else slack // 2
    seg = wav[offset:offset + length]
    if len(seg) < length:
        seg = np.pad(seg, (0, length - len(seg)))
    return seg.astype(np.float32, copy=False), int(offset)


def warp_grid(out_rows: int, in_rows: int, frames: int, inverse: bool = False,
              base: float = 21.0) -> Tensor:
    """The authors' sampling grid for F.grid_sample, [1, rows, frames, 2] (x = time, y = frequency).

    Forward (``inverse=False``): output row y in [-1, 1] reads input position
    ``(base**((y+1)/2) - (base+1)/2) / ((base-1)/2)``; with base 21 this is the authors'
    ``(21**((y+1)/2) - 11) / 10``: a log scale from 0 Hz to Nyquist. ``inverse=True`` is its
    exact functional inverse, used to map a warped mask back to the linear bins. ``in_rows`` is
    not needed by the formula (grid_sample normalises), it is kept for clarity at call sites.
    """
    del in_rows
    rows = out_rows
    y = torch.linspace(-1.0, 1.0, rows, dtype=torch.float64)
    x = torch.linspace(-1.0, 1.0, frames, dtype=torch.float64)
    half = (base - 1.0) / 2.0
    if inverse:
        y = torch.log(y * half + (base + 1.0) / 2.0) / math.log(base) * 2.0 - 1.0
    else:
        y = (torch.pow(base, (y + 1.0) / 2.0) - (base + 1.0) / 2.0) / half
    grid_y, grid_x = torch.meshgrid(y, x, indexing="ij")
    return torch.stack([grid_x, grid_y], dim=-1).unsqueeze(0).float()


EMPTY_BIN = 1e-4  # partition: below this total, a bin's masks are noise and it is shared evenly


def share_masks(masks: Tensor, mode: str, valid: Tensor | None = None) -> Tensor:
    """The masks [B, S, ...] (in [0, 1]) of the S sources of each mixture, shared between them.

    ``mode`` (``model.mask_sharing``): "none" returns them unchanged; "cap" scales a bin's masks
    down where they sum to more than 1; "partition" scales them to sum to 1 at every bin (a bin
    they all leave empty is split evenly).
    ``valid`` [B, S] marks the real sources: padding slots take no share and come back 0.
    """
    if mode == "none":
        return masks
    if valid is not None:
        masks = masks * valid.reshape(*valid.shape, *[1] * (masks.dim() - 2)).to(masks.dtype)
    total = masks.sum(1, keepdim=True)
    if mode == "cap":  # a source's share never exceeds 1 (it is one term of the sum)
        return masks / total.clamp(min=1.0)
    # partition: a bin that every source leaves (all but) empty is shared evenly, so the shares sum
    # to 1 there too and the stems add up to the mixture in every bin
    real = torch.ones_like(masks) if valid is None else \
        valid.reshape(*valid.shape, *[1] * (masks.dim() - 2)).to(masks.dtype).expand_as(masks)
    even = real / real.sum(1, keepdim=True).clamp(min=1.0)
    return torch.where(total > EMPTY_BIN, masks / total.clamp(min=EMPTY_BIN), even)


class AudioFrontEnd(nn.Module):
    """Batched STFT / log-frequency warp / mask / iSTFT, with every constant from AudioConfig.

    Args:
        config: the audio constants; defaults are the paper's.

    Shapes (paper defaults): wav [B, 65535] -> stft [B, 512, 256] complex -> magnitude
    [B, 1, 512, 256] -> warp -> [B, 1, 256, 256]; a mask [B, 1, 256, 256] -> unwarp ->
    [B, 1, 512, 256] -> apply to the mixture -> wav [B, 65535].
    """

    def __init__(self, config: AudioConfig | None = None):
        super().__init__()
        self.config = c = config or AudioConfig()
        self.register_buffer("window", torch.hann_window(c.win_length), persistent=False)
        frames = c.frames
        self.register_buffer("grid_warp", warp_grid(c.warp_bins, c.freq_bins, frames, False, c.warp_base),
                             persistent=False)
        self.register_buffer("grid_unwarp", warp_grid(c.freq_bins, c.warp_bins, frames, True, c.warp_base),
                             persistent=False)

    # --- STFT -------------------------------------------------------------------------------
    def stft(self, wav: Tensor) -> Tensor:
        """wav [B, L] -> complex spectrogram [B, F, T] (F = n_fft/2 + 1, T = 1 + L // hop)."""
        c = self.config
        return torch.stft(wav, c.n_fft, c.hop_length, c.win_length, self.window.to(wav.dtype),
                          center=True, return_complex=True)

    def istft(self, spec: Tensor, length: int) -> Tensor:
        """complex [B, F, T] -> wav [B, length]."""
        c = self.config
        return torch.istft(spec, c.n_fft, c.hop_length, c.win_length, self.window.to(spec.real.dtype),
                           center=True, length=length)

    # --- log-frequency warp -------------------------------------------------------------------
    def _grid(self, grid: Tensor, x: Tensor) -> Tensor:
        # The stored grid is for the configured crop; other lengths (whole songs) get their own.
        rows, frames = grid.shape[1], x.shape[-1]
        if grid.shape[2] != frames:
            c = self.config
            inverse = grid is self.grid_unwarp
            grid = warp_grid(rows, 0, frames, inverse, c.warp_base).to(x.device)
        return grid.to(x.dtype).expand(x.shape[0], -1, -1, -1)

    def warp(self, x: Tensor) -> Tensor:
        """Linear-frequency [B, C, F, T] -> log-frequency [B, C, warp_bins, T] (bilinear)."""
        return F.grid_sample(x, self._grid(self.grid_warp, x), mode="bilinear", align_corners=True)

    def unwarp(self, x: Tensor) -> Tensor:
        """Log-frequency [B, C, warp_bins, T] -> linear-frequency [B, C, F, T] (bilinear)."""
        return F.grid_sample(x, self._grid(self.grid_unwarp, x), mode="bilinear", align_corners=True)

    # --- features, targets, reconstruction ----------------------------------------------------
    def magnitude(self, wav: Tensor) -> tuple[Tensor, Tensor]:
        """wav [B, L] -> (warped magnitude [B, 1, warp_bins, T], complex STFT [B, F, T])."""
        spec = self.stft(wav)
        return self.warp(spec.abs().unsqueeze(1)), spec

    def log(self, mag: Tensor) -> Tensor:
        """Network input: log(mag + eps)."""
        return torch.log(mag + self.config.log_eps)

    def binary_mask(self, source_mag: Tensor, mix_mag: Tensor) -> Tensor:
        """The authors' target: 1 where the source is above threshold x mixture magnitude."""
        return (source_mag > self.config.mask_threshold * mix_mag).to(mix_mag.dtype)

    @staticmethod
    def ratio_mask(source_mag: Tensor, mix_mag: Tensor) -> Tensor:
        """Ideal ratio mask, clamped to [0, 1]."""
        return (source_mag / mix_mag.clamp_min(1e-10)).clamp(0.0, 1.0)

    @staticmethod
    def loss_weight(mix_mag: Tensor) -> Tensor:
        """Per-pixel weight of the mask loss (the authors' code): clamp(log1p(mix), 1e-3, 10)."""
        return torch.log1p(mix_mag).clamp(1e-3, 10.0)

    def apply_mask(self, mask: Tensor, mix_spec: Tensor, length: int, warped: bool = True) -> Tensor:
        """Mask [B, 1, rows, T] (warped grid if ``warped``) on the mixture STFT [B, F, T] -> wav [B, length].

        The mask is mapped back to the linear bins, multiplied with the mixture magnitude and given
        the mixture phase (the paper's reconstruction).
        """
        if warped:
            mask = self.unwarp(mask)
        mask = mask.squeeze(1)  # [B, F, T]
        return self.istft(mix_spec * mask.to(mix_spec.real.dtype), length)
