"""Audio front-end: STFT round trip, log-frequency warp, masks, shapes for the paper config."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tribert.audio import AudioFrontEnd, crop, resample, share_masks, warp_grid
from tribert.config import AudioConfig


def test_paper_shapes():
    fe = AudioFrontEnd(AudioConfig())
    wav = torch.randn(3, 65535)
    spec = fe.stft(wav)
    assert spec.shape == (3, 512, 256) and spec.is_complex()
    mag, _ = fe.magnitude(wav)
    assert mag.shape == (3, 1, 256, 256)
    assert fe.unwarp(mag).shape == (3, 1, 512, 256)


def test_stft_istft_round_trip():
    fe = AudioFrontEnd(AudioConfig()).double()
    wav = torch.randn(2, 65535, dtype=torch.float64)
    back = fe.istft(fe.stft(wav), 65535)
    assert ((back - wav).norm() / wav.norm()).item() < 1e-4
    # float32 as used in training: still far below the bar.
    fe32 = AudioFrontEnd(AudioConfig())
    w32 = wav.float()
    assert ((fe32.istft(fe32.stft(w32), 65535) - w32).norm() / w32.norm()).item() < 1e-4


def test_warp_grid_matches_authors_formula_and_inverts():
    g = warp_grid(256, 512, 4)
    y = np.linspace(-1, 1, 256)
    np.testing.assert_allclose(g[0, :, 0, 1].numpy(), (21 ** ((y + 1) / 2) - 11) / 10, atol=1e-6)
    inv = warp_grid(512, 256, 4, inverse=True)[0, :, 0, 1].double()
    x = torch.linspace(-1, 1, 512, dtype=torch.float64)
    # inverse(forward-coordinate) recovers the row: y = 2 log21(10x + 11) - 1
    np.testing.assert_allclose(inv.numpy(), (torch.log(x * 10 + 11) / math.log(21) * 2 - 1).numpy(), atol=1e-6)
    assert g[0, 0, 0, 1] == pytest.approx(-1) and g[0, -1, 0, 1] == pytest.approx(1)


# A spectrogram that is smooth on the scale of the warp's coarsest row spacing (~6.4 linear bins
# near Nyquist) survives warp -> inverse warp with a small error.
WARP_ROUND_TRIP_TOL = 1e-3  # measured: 3.6e-4 relative L2, 1.1e-3 of the peak at most


def test_warp_inverse_warp_smooth_spectrogram():
    fe = AudioFrontEnd(AudioConfig()).double()
    f = torch.arange(512, dtype=torch.float64)[:, None]
    t = torch.arange(256, dtype=torch.float64)[None, :]
    # Broad harmonic-ish bumps plus a smooth spectral tilt, slowly varying in time.
    spec = 1.0 / (1 + f / 100) + 0.5 * torch.exp(-((f - 150 - 30 * torch.sin(t / 40)) / 40) ** 2) \
        + 0.3 * torch.exp(-((f - 380) / 50) ** 2) * (1 + 0.5 * torch.cos(t / 25))
    x = spec[None, None]
    back = fe.unwarp(fe.warp(x))
    rel = ((back - x).norm() / x.norm()).item()
    assert rel < WARP_ROUND_TRIP_TOL, rel


def test_masks_and_apply_identity():
    fe = AudioFrontEnd(AudioConfig())
    a, b = torch.randn(1, 65535), 0.1 * torch.randn(1, 65535)
    mix = a + b
    mags, spec = fe.magnitude(torch.cat([mix, a, b]))
    ibm = fe.binary_mask(mags[1:], mags[:1])
    assert set(ibm.unique().tolist()) <= {0.0, 1.0}
    assert ibm[0].mean() > 0.9  # the loud source owns almost every bin
    irm = fe.ratio_mask(mags[1:], mags[:1])
    assert irm.min() >= 0 and irm.max() <= 1
    # An all-ones mask gives back the mixture itself.
    ones = torch.ones(1, 1, 256, 256)
    out = fe.apply_mask(ones, spec[:1], 65535)
    assert ((out - mix).norm() / mix.norm()).item() < 1e-4
    w = fe.loss_weight(mags[:1])
    assert w.min() >= 1e-3 and w.max() <= 10


def test_apply_mask_is_differentiable():
    fe = AudioFrontEnd(AudioConfig(crop_samples=8191))
    wav = torch.randn(2, 8191)
    mag, spec = fe.magnitude(wav)
    mask = torch.rand(2, 1, 256, mag.shape[-1], requires_grad=True)
    fe.apply_mask(mask, spec, 8191).pow(2).sum().backward()
    assert mask.grad is not None and mask.grad.abs().sum() > 0


def test_other_lengths_get_their_own_grid():
    fe = AudioFrontEnd(AudioConfig())
    mag, _ = fe.magnitude(torch.randn(1, 11025 * 10))  # a whole 10 s recording, not the crop length
    assert mag.shape[-2] == 256 and mag.shape[-1] == 1 + 110250 // 256


def test_small_recipe_shapes():
    cfg = AudioConfig(crop_samples=32767, warp_bins=128)
    fe = AudioFrontEnd(cfg)
    mag, _ = fe.magnitude(torch.randn(2, 32767))
    assert mag.shape == (2, 1, 128, 128) and cfg.frames == 128


def test_resample_and_crop(rng):
    t = np.arange(44100) / 44100
    tone = np.sin(2 * np.pi * 440 * t).astype(np.float32)
    out = resample(tone, 44100, 11025)
    assert len(out) == 11025
    spectrum = np.abs(np.fft.rfft(out))
    assert abs(np.argmax(spectrum) * 11025 / len(out) - 440) < 2
    seg, off = crop(out, 5000)
    assert len(seg) == 5000 and off == (11025 - 5000) // 2
    seg, off = crop(out, 5000, rng=rng)
    np.testing.assert_array_equal(seg, out[off:off + 5000])
    seg, _ = crop(out[:100], 300)
    assert len(seg) == 300 and np.all(seg[100:] == 0)


def test_shared_masks_against_known_answers():
    # One mixture, three slots (the last is padding), two bins: [0.8, 0.6] sum to 1.4, [0.3, 0.2] to 0.5.
    masks = torch.tensor([[[0.8, 0.3], [0.6, 0.2], [0.9, 0.9]]], requires_grad=True)  # [B=1, S=3, bins]
    valid = torch.tensor([[True, True, False]])
    assert torch.equal(share_masks(masks, "none", valid), masks)
    cap = share_masks(masks, "cap", valid)
    assert torch.allclose(cap, torch.tensor([[[0.8 / 1.4, 0.3], [0.6 / 1.4, 0.2], [0.0, 0.0]]]))
    part = share_masks(masks, "partition", valid)
    assert torch.allclose(part, torch.tensor([[[0.8 / 1.4, 0.6], [0.6 / 1.4, 0.4], [0.0, 0.0]]]))
    part[0, 0, 1].backward()  # a source's share falls as its partner's mask rises
    assert masks.grad[0, 0, 1] > 0 and masks.grad[0, 1, 1] < 0 and masks.grad[0, 2].abs().sum() == 0
    # a bin every source leaves (all but) empty is split evenly among the real sources: the shares
    # sum to 1 in every bin, so the stems add up to the mixture (it was left out of every stem)
    empty = share_masks(torch.tensor([[[1e-6, 0.0, 0.5], [0.0, 1e-7, 0.5], [0.0, 0.0, 0.0]]]), "partition", valid)
    assert torch.allclose(empty, torch.tensor([[[0.5, 0.5, 0.5], [0.5, 0.5, 0.5], [0.0, 0.0, 0.0]]]))
    assert torch.allclose(share_masks(torch.zeros(2, 3, 4), "partition").sum(1), torch.ones(2, 4))
