"""Our BSS Eval (the fast backend) and fast_bss_eval against mir_eval, the reference implementation."""

from __future__ import annotations

import numpy as np
import pytest

import torch

from tribert.metrics import SeparationScores, bss_eval, bss_eval_many, bss_eval_rows, reference_factors, score_mixture


def _signals(rng, n=2, length=11025):
    t = np.arange(length) / 11025
    refs = np.stack([np.sin(2 * np.pi * (220 * (i + 1)) * t) * (1 + 0.3 * np.sin(2 * np.pi * 3 * t))
                     + 0.1 * rng.standard_normal(length) for i in range(n)])
    mix = refs.sum(0)
    # Estimates: a partly separated signal with leakage and a little filtering/noise.
    est = np.stack([0.8 * refs[i] + 0.2 * mix + 0.05 * rng.standard_normal(length) for i in range(n)])
    est[:, 1:] += 0.3 * est[:, :-1]
    return refs, est


def _music(rng, n: int, length: int = 12000, rate: int = 11025) -> tuple[np.ndarray, np.ndarray]:
    """n instrument-like sources (notes of 5 harmonics with vibrato and decaying envelopes, a little
    noise) [n, L] and mask-separated estimates of them [n, L]: a soft STFT mask from magnitudes
    blurred by noise, applied to the mixture (filtering, leakage and artifacts, as a model gives)."""
    t = np.arange(length) / rate
    refs = np.zeros((n, length))
    notes = 4
    for i in range(n):
        for k in range(notes):
            f0 = 110 * 2 ** rng.uniform(0, 3)
            start, stop = k * length // notes, (k + 1) * length // notes
            tt = t[start:stop] - t[start]
            env = (1 - np.exp(-tt * 80)) * np.exp(-tt * rng.uniform(1, 6))
            phase = 2 * np.pi * f0 * tt + 0.3 * np.sin(2 * np.pi * 5 * tt)
            refs[i, start:stop] = env * sum(np.sin(h * phase) / h for h in range(1, 6))
        refs[i] += 0.01 * rng.standard_normal(length)
    window = torch.hann_window(512, dtype=torch.float64)
    spec = torch.stft(torch.as_tensor(refs), 512, 128, window=window, return_complex=True)  # [n, F, T]
    mag = spec.abs() * torch.as_tensor(np.exp(0.5 * rng.standard_normal(spec.shape)))
    mask = mag / mag.sum(0).clamp(min=1e-8)
    est = torch.istft(mask * spec.sum(0), 512, 128, window=window, length=length)
    return refs, est.numpy()


@pytest.mark.parametrize("n", [2, 3, 4])
def test_fast_backends_agree_with_mir_eval(rng, n):
    """Our shared-factorisation metric (several estimate sets at once) and fast_bss_eval give
    mir_eval's numbers within 0.01 dB, for a masked estimate and for the unprocessed mixture."""
    refs, masked = _music(rng, n)
    mixture = np.repeat(refs.sum(0, keepdims=True), n, 0)
    ests = np.stack([masked, mixture])  # [R=2, S, L]
    ours = bss_eval_many(torch.as_tensor(refs)[None], torch.as_tensor(ests)[:, None])  # 3 x [R, 1, S]
    for r, est in enumerate(ests):
        want = bss_eval(refs, est, "mir_eval")
        library = bss_eval(refs, est, "fast_bss_eval")
        # SAR of the mixture: its artifacts are zero, mir_eval's figure is rounding noise (> 200 dB)
        metrics = 2 if r == 1 else 3
        for k in range(metrics):
            np.testing.assert_allclose(ours[k][r, 0].numpy(), want[k], atol=0.01)
            np.testing.assert_allclose(library[k], want[k], atol=0.01)
        if r == 1:
            assert np.all(ours[2][r, 0].numpy() > 100) and np.all(want[2] > 100)
    assert 0 < ours[0][0].mean() < 40 and ours[0][1].mean() < ours[0][0].mean() - 3  # a real separation


def test_rows_at_once_agree_with_one_row_at_a_time(rng):
    """Several estimate sets of several mixtures in one call give the numbers of the earlier path
    (fast_bss_eval, one row per call) and the same bits as each row scored alone."""
    refs, ests = [], []
    for _ in range(3):
        r, masked = _music(rng, 2, length=6000)
        refs.append(r)
        ests.append([masked, np.repeat(r.sum(0, keepdims=True), 2, 0), 0.7 * r + 0.3 * masked])
    ref = torch.as_tensor(np.stack(refs))  # [M=3, S=2, L]
    rows = torch.as_tensor(np.stack(ests)).transpose(0, 1).contiguous()  # [R=3, M, S, L]
    together = bss_eval_rows(ref, rows)  # 3 x [R, M, S]
    for r in range(rows.shape[0]):
        earlier = bss_eval(ref, rows[r], "fast_bss_eval")  # 3 x [M, S]
        alone = bss_eval(ref, rows[r])
        for k in range(2 if r == 1 else 3):  # (the mixture's SAR is unbounded: see above)
            np.testing.assert_allclose(together[k][r], earlier[k], atol=0.01)
        for k in range(3):
            np.testing.assert_array_equal(together[k][r], alone[k])


def test_singular_gram_matrix_takes_the_fallback_and_agrees_with_mir_eval(rng):
    """A reference that is an exact delayed copy of another makes the Gram matrix of the delayed
    references singular: Cholesky fails, the least-squares fallback gives mir_eval's numbers."""
    first = rng.standard_normal(6000)
    first[-3:] = 0
    refs = np.stack([first, np.concatenate([np.zeros(3), first[:-3]])])
    est = refs + 0.3 * rng.standard_normal(refs.shape)
    assert not bool(reference_factors(torch.as_tensor(refs)[None]).ok_all.all())
    for a, b in zip(bss_eval(refs, est), bss_eval(refs, est, "mir_eval")):
        np.testing.assert_allclose(a, b, atol=0.01)


def test_better_estimate_scores_higher(rng):
    refs, est = _signals(rng)
    sdr_good = bss_eval(refs, 0.9 * refs + 0.1 * est)[0]
    sdr_bad = bss_eval(refs, est)[0]
    assert np.all(sdr_good > sdr_bad + 3)


def test_silent_reference_is_skipped_and_counted(rng):
    refs, est = _signals(rng)
    scores = SeparationScores()
    assert score_mixture(scores, refs, est)
    refs[1] = 0
    assert not score_mixture(scores, refs, est)
    m = scores.mean()
    assert m["mixtures"] == 1 and m["skipped"] == 1 and m["sources"] == 2
    # a reference with no samples has nothing to score: skipped, not a NaN passed to BSS Eval
    assert not score_mixture(scores, refs[..., :0], est[..., :0])
    assert scores.mean()["skipped"] == 2


def test_shape_mismatch_is_an_error(rng):
    refs, est = _signals(rng)
    with pytest.raises(ValueError):
        bss_eval(refs, est[:1])


def test_batched_metric_with_two_threads(rng):
    """With 2 torch threads this torch build's batched float64 solve failed inside fast_bss_eval
    (issue 10.8); the metric runs its solve on one thread and restores the count. Our backend's
    batched Cholesky runs on two threads."""

    refs = rng.standard_normal((3, 2, 8000))
    est = refs + 0.3 * rng.standard_normal((3, 2, 8000))
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        sdrs = [bss_eval(refs, est, backend)[0] for backend in ("fast", "fast_bss_eval")]
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    one = bss_eval(refs[1], est[1], "mir_eval")[0]  # the batch agrees with the reference, mixture by mixture
    for sdr in sdrs:
        assert sdr.shape == (3, 2) and np.allclose(sdr[1], one, atol=0.01)


def test_a_silent_estimate_scores_alike_on_every_backend(rng):
    """A mask that is zero everywhere gives an all-zero estimate: fast and fast_bss_eval score it
    -inf / NaN / -inf; mir_eval refused the whole mixture with a ValueError traceback
    (`evaluate --threshold 0.5 --backend mir_eval`). The other estimate keeps its mir_eval score."""
    refs, est = _music(rng, 3)
    silenced = est.copy()
    silenced[1] = 0.0
    alone = bss_eval(refs, est, "mir_eval")  # mir_eval on the mixture with no silent estimate
    for backend in ("fast", "fast_bss_eval", "mir_eval"):
        sdr, sir, sar = bss_eval(refs, silenced, backend)
        assert sdr[1] == -np.inf and np.isnan(sir[1]) and sar[1] == -np.inf, backend
        for k, metric in enumerate((sdr, sir, sar)):
            np.testing.assert_allclose(metric[[0, 2]], alone[k][[0, 2]], atol=0.01, err_msg=backend)
