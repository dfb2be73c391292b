"""Separation metrics: SDR / SIR / SAR of BSS Eval v3.

``fast_bss_eval`` (torch backend, float64) is the default: it gives the numbers of
``mir_eval.separation.bss_eval_sources`` (512-tap distortion filter, no permutation) several times
faster; ``backend="mir_eval"`` computes the reference numbers. A test keeps the two within 0.01 dB.
Mixtures where any reference source is silent are skipped (the metrics are undefined there) and
counted, never silently scored.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch

SILENCE_RMS = 1e-5  # a reference quieter than this (about -100 dBFS) counts as silent


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
    ref = torch.as_tensor(ref)
    return bool(ref.double().pow(2).mean(-1).sqrt().min() < SILENCE_RMS)


@contextmanager
def one_cpu_thread(device: torch.device):
    """Run a CPU block on one torch thread, then restore the count.

    The CPU build of torch 2.13 used here fails batched float64 ``torch.linalg.solve`` with two or
    more threads (MKL: "Parameter 6 was incorrect on entry to DLASWP", then "Pivots given to
    lu_solve must all be greater or equal to 1"); fast_bss_eval solves a batch of systems."""
    threads = torch.get_num_threads()
    if device.type != "cpu" or threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def bss_eval(ref: np.ndarray | torch.Tensor, est: np.ndarray | torch.Tensor,
             backend: str = "fast") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SDR, SIR, SAR (dB) of estimates ``est`` [..., S, L] against references ``ref`` [..., S, L].

    Sources are scored in the given order (no permutation search), jointly, so SIR measures the
    leakage of the other references into each estimate. Leading dimensions are a batch of
    mixtures scored in one call (``fast`` backend: one batched solve, on the tensors' device,
    in float64). Returns three float64 arrays [..., S].
    """
    ref64 = torch.as_tensor(ref).double()
    est64 = torch.as_tensor(est).double()
    if ref64.shape != est64.shape or ref64.ndim < 2:
        raise ValueError(f"ref and est must both be [S, L], got {tuple(ref64.shape)} and {tuple(est64.shape)}")
    if backend == "fast":
        import fast_bss_eval

        with one_cpu_thread(ref64.device):
            sdr, sir, sar = fast_bss_eval.bss_eval_sources(ref64, est64.to(ref64.device), filter_length=512,
                                                          compute_permutation=False)
        return sdr.cpu().numpy(), sir.cpu().numpy(), sar.cpu().numpy()
    if backend == "mir_eval":
        import mir_eval

        refs = ref64.cpu().numpy().reshape(-1, *ref64.shape[-2:])
        ests = est64.cpu().numpy().reshape(-1, *est64.shape[-2:])
        scores = [mir_eval.separation.bss_eval_sources(r, e, compute_permutation=False)[:3]
                  for r, e in zip(refs, ests)]
        return tuple(np.stack([sc[i] for sc in scores]).reshape(ref64.shape[:-1]) for i in range(3))
    raise ValueError(f"unknown metrics backend {backend!r} (use 'fast' or 'mir_eval')")


def score_mixture(scores: SeparationScores, ref, est, backend: str = "fast") -> bool:
    """Score one mixture into ``scores``; returns False (and counts a skip) if a reference is silent."""
    if is_silent(ref):
        scores.skipped += 1
        return False
    scores.add(*bss_eval(ref, est, backend))
    return True
