"""Separation metrics: SDR / SIR / SAR of BSS Eval v3.

Three backends give the numbers of ``mir_eval.separation.bss_eval_sources`` (512-tap distortion
filter, no permutation); tests keep them within 0.01 dB of each other:

* ``"fast"`` (default): :func:`bss_eval_many`, our torch implementation (float64), batched over
  mixtures; several estimate sets of one reference set (the mixture, oracle and model rows of an
  evaluation) share the references' FFTs and the Cholesky factors of their Gram matrices.
* ``"fast_bss_eval"``: the ``fast_bss_eval`` library (torch, float64), one LU solve per estimate.
* ``"mir_eval"``: the reference implementation, one mixture at a time.

Mixtures where any reference source is silent are skipped (the metrics are undefined there) and
counted, never silently scored.
"""

from __future__ import annotations

from contextlib import contextmanager
from functools import lru_cache
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import torch

SILENCE_RMS = 1e-5  # a reference quieter than this (about -100 dBFS) counts as silent
FILTER_LENGTH = 512  # taps of BSS Eval v3's distortion filter (delays 0 .. 511 of every reference)
BACKENDS = ("fast", "fast_bss_eval", "mir_eval")


@dataclass
class SeparationScores:
    """Per-source SDR/SIR/SAR lists over all scored mixtures, plus how many were skipped."""

    sdr: list[float] = field(default_factory=list)
    sir: list[float] = field(default_factory=list)
    sar: list[float] = field(default_factory=list)
    skipped: int = 0  # mixtures with a silent reference
    mixtures: int = 0  # mixtures scored

    def add(self, sdr, sir, sar) -> None:
        self.sdr += [float(x) for x in np.ravel(sdr)]
        self.sir += [float(x) for x in np.ravel(sir)]
        self.sar += [float(x) for x in np.ravel(sar)]
        self.mixtures += 1

    def extend(self, other: "SeparationScores") -> None:
        """Add another set of scores (e.g. of another batch) to these."""
        self.sdr += other.sdr
        self.sir += other.sir
        self.sar += other.sar
        self.skipped += other.skipped
        self.mixtures += other.mixtures

    def mean(self) -> dict[str, float]:
        def m(xs):
            return float(np.mean(xs)) if xs else float("nan")
        return {"sdr": m(self.sdr), "sir": m(self.sir), "sar": m(self.sar),
                "sources": len(self.sdr), "mixtures": self.mixtures, "skipped": self.skipped}


def is_silent(ref: np.ndarray | torch.Tensor) -> bool:
    """Whether any reference in ``ref`` (..., samples) is below ``SILENCE_RMS``; one with no samples
    has nothing to score and counts as silent (its RMS would be NaN, which compares False)."""
    ref = torch.as_tensor(ref)
    if ref.shape[-1] == 0:
        return True
    return bool(ref.double().pow(2).mean(-1).sqrt().min() < SILENCE_RMS)


@contextmanager
def one_cpu_thread(device: torch.device):
    """Run a CPU block on one torch thread, then restore the count.

    The CPU build of torch 2.13 used here fails batched float64 ``torch.linalg.solve`` with two or
    more threads (MKL: "Parameter 6 was incorrect on entry to DLASWP", then "Pivots given to
    lu_solve must all be greater or equal to 1"); fast_bss_eval solves a batch of systems. Batched
    ``cholesky_ex`` and ``solve_triangular`` give correct results with two threads."""
    threads = torch.get_num_threads()
    if device.type != "cpu" or threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _fft_length(n: int) -> int:
    """The smallest 2^a 3^b 5^c >= n: an FFT size torch transforms quickly (at most ~1.2 n, against
    up to 2 n for the next power of two)."""
    best = 1 << (n - 1).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            p = p35
            while p < n:
                p *= 2
            best = min(best, p)
            p35 *= 3
        p5 *= 5
    return best


def _unit(x: torch.Tensor) -> torch.Tensor:
    """Scale every signal [..., L] to unit energy (as fast_bss_eval does; the ratios do not change)."""
    return x / x.norm(dim=-1, keepdim=True).clamp(min=1e-6)


class ReferenceFactors(NamedTuple):
    """What every estimate of one reference set [M, S, L] is projected with."""

    spectra: torch.Tensor  # [M, S, F] rfft of the unit-energy references, n_fft points
    n_fft: int
    chol_all: torch.Tensor  # [M, S*T, S*T] lower Cholesky factor of the Gram matrix of all delayed references
    chol_own: torch.Tensor  # [M, S, T, T] the same of each reference's own delays
    gram_all: torch.Tensor  # [M, S*T, S*T] the Gram matrix (kept for the fallback solve)
    gram_own: torch.Tensor  # [M, S, T, T]
    ok_all: torch.Tensor  # [M] bool: Cholesky succeeded
    ok_own: torch.Tensor  # [M, S] bool


@lru_cache(maxsize=8)
def _gram_index(sources: int, taps: int, device: torch.device) -> torch.Tensor:
    """Index [S*T, S*T] into the flattened correlations [S, S, 2T-1] of :func:`reference_factors`:
    entry ((i, a), (j, b)) reads c_ij(a - b)."""
    delay = torch.arange(taps, device=device)
    source = torch.arange(sources, device=device)
    lag = delay[:, None] - delay[None, :] + taps - 1  # [T, T]: a - b, shifted to an index of the lags
    pair = (source[:, None] * sources + source[None, :]) * (2 * taps - 1)  # [S, S]: start of c_ij
    return (pair[:, None, :, None] + lag[None, :, None, :]).reshape(sources * taps, sources * taps)


def reference_factors(ref: torch.Tensor, taps: int = FILTER_LENGTH) -> ReferenceFactors:
    """FFTs of the references [M, S, L] and Cholesky factors of the Gram matrices of their delays.

    The Gram matrix of the delayed references (delays 0 .. taps-1, zero-padded by taps-1 samples
    as in mir_eval) has entries <r_i(. - a), r_j(. - b)> = c_ij(a - b), with the correlation
    c_ij(k) = sum_n r_i(n) r_j(n + k); rows and columns are ordered (source, delay).
    """
    m, s, length = ref.shape
    n_fft = _fft_length(length + taps - 1)  # no circular wrap for lags |k| < taps
    spectra = torch.fft.rfft(_unit(ref.double()), n=n_fft)  # [M, S, F]
    corr = torch.fft.irfft(spectra.conj()[:, :, None] * spectra[:, None], n=n_fft)  # [M, S, S, n_fft]: c_ij(k)
    lags = torch.cat([corr[..., n_fft - taps + 1:], corr[..., :taps]], -1)  # [M, S, S, 2T-1]: k = -(T-1) .. T-1
    gram_all = lags.reshape(m, -1)[:, _gram_index(s, taps, ref.device)]  # [M, S*T, S*T], one gather
    gram_own = gram_all.view(m, s, taps, s, taps).diagonal(dim1=1, dim2=3).permute(0, 3, 1, 2)  # [M, S, T, T]
    # Cholesky, batched, needs no thread guard on this torch build (unlike the batched LU solve).
    chol_all, info_all = torch.linalg.cholesky_ex(gram_all)
    chol_own, info_own = torch.linalg.cholesky_ex(gram_own)
    return ReferenceFactors(spectra, n_fft, chol_all, chol_own, gram_all, gram_own, info_all == 0, info_own == 0)


def _fallback_energy(gram: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor:
    """x^T G^-1 x per column of ``rhs`` [N, K] for a Gram matrix ``gram`` [N, N] that is singular or
    too ill-conditioned for Cholesky: LU solve, then least squares (minimum norm) as mir_eval does."""
    with one_cpu_thread(gram.device):
        sol, info = torch.linalg.solve_ex(gram, rhs)
        if int(info) != 0 or not bool(torch.isfinite(sol).all()):
            sol = torch.linalg.lstsq(gram.cpu(), rhs.cpu(), driver="gelsd").solution.to(gram.device)
    return (rhs * sol).sum(-2)  # [K]


def _projected_energy(chol: torch.Tensor, ok: torch.Tensor, gram: torch.Tensor,
                      rhs: torch.Tensor) -> torch.Tensor:
    """Energy x^T G^-1 x of the projection of unit-energy estimates onto the span of delayed
    references, from their correlations ``rhs`` [..., N, K] with those references: |L^-1 x|^2 for
    the Cholesky factor ``chol`` [..., N, N] of G; matrices whose Cholesky failed (``ok`` [...] is
    False) or whose energy leaves [0, 1] take the fallback solve. Returns [..., K]."""
    with one_cpu_thread(chol.device):  # a few right-hand sides: ~9x faster on one thread than on two here
        energy = torch.linalg.solve_triangular(chol, rhs, upper=False).pow(2).sum(-2)  # [..., K]
    bad = ~ok | ~((energy >= 0) & (energy <= 1 + 1e-9)).all(-1)
    for i in bad.nonzero().tolist():
        energy[tuple(i)] = _fallback_energy(gram[tuple(i)], rhs[tuple(i)])
    return energy


def _coherence_db(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """10 log10(c / (1 - c)) of the energy ratio c = num / den clamped to [0, 1] (fast_bss_eval's
    mapping: a projection energy c of a unit-energy signal leaves 1 - c outside)."""
    c = (num / den).clamp(0.0, 1.0)
    return 10.0 * torch.log10(c / (1.0 - c))


def bss_eval_many(ref: torch.Tensor, ests: torch.Tensor, taps: int = FILTER_LENGTH,
                  factors: ReferenceFactors | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """BSS Eval v3 ``bss_eval_sources`` (no permutation) of R estimate sets of one reference set.

    ``ref`` [M, S, L]: M mixtures of S reference sources; ``ests`` [R, M, S, L]: R estimates of each
    (e.g. the rows mixture, IBM, IRM, model). Estimate j of a mixture is projected onto the delays
    0 .. taps-1 of reference j alone (the target s_filt, energy c_own) and of all references
    (target + interference, energy c_all); with unit-energy estimates
    SDR = c_own / (1 - c_own), SIR = c_own / (c_all - c_own), SAR = c_all / (1 - c_all) (in dB).
    The references' FFTs and Cholesky factors are computed once (or passed as ``factors``) and
    shared by all R rows. float64 on ``ref``'s device. Returns sdr, sir, sar [R, M, S].
    """
    ref = torch.as_tensor(ref)
    ests = torch.as_tensor(ests).to(ref.device)
    if ref.ndim != 3 or ests.ndim != 4 or ests.shape[1:] != ref.shape:
        raise ValueError(f"want ref [M, S, L] and ests [R, M, S, L], got {tuple(ref.shape)} and {tuple(ests.shape)}")
    m, s = ref.shape[:2]
    f = reference_factors(ref, taps) if factors is None else factors
    c_own, c_all = [], []  # R x [M, S]
    for est in ests:  # one row at a time: its numbers do not depend on which other rows come along
        spectra = torch.fft.rfft(_unit(est.double()), n=f.n_fft)  # [M, S, F]
        # correlations <r_i(. - a), e_j> for delays a = 0 .. taps-1: [M, S_ref i, S_est j, T]
        xcorr = torch.fft.irfft(f.spectra.conj()[:, :, None] * spectra[:, None], n=f.n_fft)[..., :taps]
        rhs_all = xcorr.permute(0, 1, 3, 2).reshape(m, s * taps, s)  # [M, S*T, S]: all references, estimate j
        rhs_own = xcorr.diagonal(dim1=1, dim2=2).transpose(1, 2)[..., None]  # [M, S, T, 1]: reference j, estimate j
        c_all.append(_projected_energy(f.chol_all, f.ok_all, f.gram_all, rhs_all))  # [M, S]
        c_own.append(_projected_energy(f.chol_own, f.ok_own, f.gram_own, rhs_own)[..., 0])  # [M, S]
    c_own, c_all = torch.stack(c_own), torch.stack(c_all)  # [R, M, S]
    one = torch.ones_like(c_own)
    return _coherence_db(c_own, one), _coherence_db(c_own, c_all), _coherence_db(c_all, one)


def bss_eval(ref: np.ndarray | torch.Tensor, est: np.ndarray | torch.Tensor,
             backend: str = "fast") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SDR, SIR, SAR (dB) of estimates ``est`` [..., S, L] against references ``ref`` [..., S, L].

    Sources are scored in the given order (no permutation search), jointly, so SIR measures the
    leakage of the other references into each estimate. Leading dimensions are a batch of
    mixtures scored in one call (``fast`` / ``fast_bss_eval``: batched, on the tensors' device, in
    float64). Returns three float64 arrays [..., S].
    """
    ref64 = torch.as_tensor(ref).double()
    est64 = torch.as_tensor(est).double()
    if ref64.shape != est64.shape or ref64.ndim < 2:
        raise ValueError(f"ref and est must both be [S, L], got {tuple(ref64.shape)} and {tuple(est64.shape)}")
    if backend == "fast":
        flat = ref64.reshape(-1, *ref64.shape[-2:])  # [M, S, L]
        scores = bss_eval_many(flat, est64.reshape(1, *flat.shape))  # 3 x [1, M, S]
        return tuple(x.reshape(ref64.shape[:-1]).cpu().numpy() for x in scores)
    if backend == "fast_bss_eval":
        import fast_bss_eval

        with one_cpu_thread(ref64.device):
            sdr, sir, sar = fast_bss_eval.bss_eval_sources(ref64, est64.to(ref64.device), filter_length=FILTER_LENGTH,
                                                          compute_permutation=False)
        return sdr.cpu().numpy(), sir.cpu().numpy(), sar.cpu().numpy()
    if backend == "mir_eval":
        import mir_eval

        refs = ref64.cpu().numpy().reshape(-1, *ref64.shape[-2:])
        ests = est64.cpu().numpy().reshape(-1, *est64.shape[-2:])
        scores = [_mir_eval_sources(mir_eval, r, e) for r, e in zip(refs, ests)]
        return tuple(np.stack([sc[i] for sc in scores]).reshape(ref64.shape[:-1]) for i in range(3))
    raise ValueError(f"unknown metrics backend {backend!r} (use one of {', '.join(BACKENDS)})")


def _mir_eval_sources(mir_eval, ref: np.ndarray, est: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """mir_eval's SDR, SIR, SAR of one mixture [S, L]. It refuses a mixture with an all-zero
    estimate (a mask that is zero everywhere), which the other backends score -inf / NaN / -inf.
    It scores each estimate on its own against all references, so a silent estimate is scored
    in place of a stand-in (its reference), given those values, and the others are unchanged."""
    silent = ~np.any(est != 0, axis=-1)  # [S]
    sdr, sir, sar = mir_eval.separation.bss_eval_sources(ref, np.where(silent[:, None], ref, est),
                                                         compute_permutation=False)[:3]
    sdr[silent], sir[silent], sar[silent] = -np.inf, np.nan, -np.inf
    return sdr, sir, sar


def bss_eval_rows(ref: torch.Tensor, ests: torch.Tensor,
                  backend: str = "fast") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SDR, SIR, SAR (dB) [R, M, S] of R estimate sets ``ests`` [R, M, S, L] of the references
    ``ref`` [M, S, L]: one shared factorisation with the ``fast`` backend, a call per row otherwise."""
    if backend == "fast":
        return tuple(x.cpu().numpy() for x in bss_eval_many(ref, ests))
    per_row = [bss_eval(ref, est, backend) for est in ests]  # R x (3 x [M, S])
    return tuple(np.stack([row[i] for row in per_row]) for i in range(3))


def score_mixture(scores: SeparationScores, ref, est, backend: str = "fast") -> bool:
    """Score one mixture into ``scores``; returns False (and counts a skip) if a reference is silent."""
    if is_silent(ref):
        scores.skipped += 1
        return False
    scores.add(*bss_eval(ref, est, backend))
    return True
