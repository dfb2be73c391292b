"""fast_bss_eval (our default) against mir_eval, the reference implementation."""

from __future__ import annotations

import numpy as np
import pytest

from tribert.metrics import SeparationScores, bss_eval, score_mixture


def _signals(rng, n=2, length=11025):
    t = np.arange(length) / 11025
    refs = np.stack([np.sin(2 * np.pi * (220 * (i + 1)) * t) * (1 + 0.3 * np.sin(2 * np.pi * 3 * t))
                     + 0.1 * rng.standard_normal(length) for i in range(n)])
    mix = refs.sum(0)
    # Estimates: a partly separated signal with leakage and a little filtering/noise.
    est = np.stack([0.8 * refs[i] + 0.2 * mix + 0.05 * rng.standard_normal(length) for i in range(n)])
    est[:, 1:] += 0.3 * est[:, :-1]
    return refs, est


def test_fast_bss_eval_agrees_with_mir_eval(rng):
    refs, est = _signals(rng)
    fast = bss_eval(refs, est, "fast")
    ref = bss_eval(refs, est, "mir_eval")
    for a, b in zip(fast, ref):
        np.testing.assert_allclose(a, b, atol=0.01)
    assert 0 < fast[0].mean() < 40  # a real, finite separation score


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


def test_shape_mismatch_is_an_error(rng):
    refs, est = _signals(rng)
    with pytest.raises(ValueError):
        bss_eval(refs, est[:1])


def test_batched_metric_with_two_threads(rng):
    """With 2 torch threads this torch build's batched float64 solve failed inside fast_bss_eval
    (issue 10.8); the metric runs its solve on one thread and restores the count."""
    import torch

    refs = rng.standard_normal((3, 2, 8000))
    est = refs + 0.3 * rng.standard_normal((3, 2, 8000))
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        sdr, sir, sar = bss_eval(refs, est)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    one = bss_eval(refs[1], est[1], "mir_eval")[0]  # the batch agrees with the reference, mixture by mixture
    assert sdr.shape == (3, 2) and np.allclose(sdr[1], one, atol=0.01)
