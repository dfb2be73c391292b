"""Speed of `tribert evaluate`: mixtures per second, and where the time goes.

Scores one TriBERT-small (weights do not change the cost) on the first N fixed test mixtures, four
ways in one run, every row (mixture, IBM, IRM, model) included:

* earlier: fast_bss_eval, one metric call per mixture and row;
* fast_bss_eval batched, cold cache: one call per row and source count, every row recomputed;
* shared factorisation, cold cache: our BSS Eval, one call per source count for all rows of a
  batch (the references' FFTs and Cholesky factors computed once for the four rows);
* warm cache: the same with the mixture / oracle rows read from the reference cache (the common
  case of scoring checkpoint after checkpoint on one test set).

Loading is timed apart (the loader is shared by all paths) and also added in a second column; a
profile splits the cold shared path into model, oracle masks and metric.

    python benchmarks/evaluate_speed.py --data data/synth-test/test --mixtures 96 --threads 2 \
        --out benchmarks/results/evaluate_speed.json
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path


def _max_difference(a: dict, b: dict) -> float:
    """Largest |difference| of the SDR / SIR / SAR table cells of two evaluate() results, but the
    mixture row's SAR: its artifacts are zero, so the figure is rounding noise (inf or > 100 dB)."""
    diffs = [abs(a[name][g][k] - b[name][g][k]) for name in a for g in a[name] for k in ("sdr", "sir", "sar")
             if (name, k) != ("mixture", "sar") and a[name][g]["sources"]]
    return max(diffs, default=0.0)


def main() -> None:
    import torch

    from tribert.data.batch import MixBatch  # noqa: F401 (the batches' type, in annotations)
    from tribert.config import Config
    from tribert.engine.evaluate import evaluate, masks_to_wavs, oracle_wavs, score_rows
    from tribert.engine.system import SeparationSystem
    from tribert.engine.train import eval_loader
    from tribert.io import atomic_write_json
    from tribert.metrics import SeparationScores, score_mixture

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="prepared test clips")
    p.add_argument("--mixtures", type=int, default=96, help="fixed test mixtures to score (the first N)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--out", default="evaluate_speed.json", help="JSON results")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    load_before = os.getloadavg()

    config = Config.load("synth_small", [f"data.train_dir={args.data}"])
    system = SeparationSystem(config).eval()
    t0 = time.perf_counter()
    batches = list(eval_loader(config, args.data, limit=args.mixtures))
    load_s = time.perf_counter() - t0
    n = sum(b.batch_size for b in batches)
    eval_samples = config.audio.eval_samples

    def estimates(b: MixBatch) -> dict:
        s = b.source_wavs.shape[1]
        return {"mixture": b.mix_wav[:, None].expand(-1, s, -1),
                "IBM": oracle_wavs(system.frontend, b.source_wavs, b.mix_wav, "ibm"),
                "IRM": oracle_wavs(system.frontend, b.source_wavs, b.mix_wav, "irm"),
                "m": masks_to_wavs(system.frontend, system(b)[1], b.mix_wav, None)}

    # the earlier path: one fast_bss_eval call per mixture and row
    t0 = time.perf_counter()
    with torch.no_grad():
        for b in batches:
            for est in estimates(b).values():
                for i in range(est.shape[0]):
                    score_mixture(SeparationScores(), b.real(i, b.source_wavs)[:, :eval_samples],
                                  b.real(i, est)[:, :eval_samples], "fast_bss_eval")
    per_mixture_s = time.perf_counter() - t0

    results = {}
    seconds = {"earlier: fast_bss_eval, one call per mixture and row": per_mixture_s}
    with tempfile.TemporaryDirectory() as tmp:
        for label, backend, cache in (("fast_bss_eval batched, cold cache", "fast_bss_eval", "fbe.json"),
                                      ("shared factorisation, cold cache", "fast", "fast.json"),
                                      ("shared factorisation, warm cache", "fast", "fast.json")):
            t0 = time.perf_counter()
            results[label] = evaluate({"m": system}, batches, progress=False, backend=backend,
                                      cache=Path(tmp) / cache)
            seconds[label] = time.perf_counter() - t0

    # profile of the cold shared path
    profile = {"loading": load_s, "model": 0.0, "oracle masks": 0.0, "metric": 0.0}
    with torch.no_grad():
        for b in batches:
            t0 = time.perf_counter()
            masks_to_wavs(system.frontend, system(b)[1], b.mix_wav, None)
            t1 = time.perf_counter()
            for kind in ("ibm", "irm"):
                oracle_wavs(system.frontend, b.source_wavs, b.mix_wav, kind)
            t2 = time.perf_counter()
            rows = estimates(b)
            t3 = time.perf_counter()
            score_rows({}, rows, b, eval_samples, "fast")
            profile["model"] += t1 - t0
            profile["oracle masks"] += t2 - t1
            profile["metric"] += time.perf_counter() - t3
    load_after = os.getloadavg()

    sources: dict[int, int] = {}
    for b in batches:
        for v in b.source_valid.sum(1).tolist():
            sources[v] = sources.get(v, 0) + 1
    agree = _max_difference(results["fast_bss_eval batched, cold cache"], results["shared factorisation, cold cache"])
    print(f"{n} mixtures ({', '.join(f'{c} with {s} sources' for s, c in sorted(sources.items()))}), "
          f"{args.threads} threads, {os.cpu_count()} cores, load average {load_before[0]:.1f} -> {load_after[0]:.1f}")
    print("profile of the cold shared path: " + ", ".join(f"{k} {v:.1f} s" for k, v in profile.items()))
    print(f"shared factorisation vs fast_bss_eval: largest table-cell difference {agree:.2e} dB")
    base = per_mixture_s
    fbe = seconds["fast_bss_eval batched, cold cache"]
    print(f"{'path':<54} {'seconds':>8} {'mixtures/s':>11} {'+ loading':>10} {'vs earlier':>10} {'vs fbe batched':>14}")
    for name, sec in seconds.items():
        print(f"{name:<54} {sec:>8.1f} {n / sec:>11.2f} {n / (sec + load_s):>10.2f} {base / sec:>9.2f}x "
              f"{fbe / sec:>13.2f}x")
    out = {"mixtures": n, "sources_per_mixture": sources, "threads": args.threads, "cores": os.cpu_count(),
           "machine": platform.processor() or platform.machine(), "load_average_before": load_before,
           "load_average_after": load_after, "profile_s": profile, "seconds": seconds,
           "mixtures_per_s": {k: n / v for k, v in seconds.items()},
           "mixtures_per_s_with_loading": {k: n / (v + load_s) for k, v in seconds.items()},
           "vs_earlier": {k: base / v for k, v in seconds.items()},
           "max_table_difference_db": agree}
    atomic_write_json(args.out, out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    from tribert.errors import run_main

    run_main(main)
