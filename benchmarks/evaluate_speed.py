"""Speed of `tribert evaluate`: mixtures per second, and where the time goes.

Scores one TriBERT-small (weights do not change the cost) on the first N fixed test mixtures,
three ways in one run: the earlier path (every mixture scored on its own, all rows recomputed),
the batched metric with every row recomputed (a cold cache), and the batched metric with the
mixture / oracle rows read from the cache (a warm one, the common case of scoring checkpoint
after checkpoint on one test set). Loading is timed apart (the loader is shared by all three).

    python benchmarks/evaluate_speed.py --data data/synth-test/test --mixtures 96 --out evaluate_speed.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def main() -> None:
    import torch

    from tribert.engine.config import Config
    from tribert.engine.evaluate import evaluate, masks_to_wavs, oracle_wavs
    from tribert.engine.system import SeparationSystem
    from tribert.engine.train import eval_loader
    from tribert.metrics import SeparationScores, score_mixture

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True)
    p.add_argument("--mixtures", type=int, default=96)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default="evaluate_speed.json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    config = Config.load("synth_small", [f"data.train_dir={args.data}"])
    system = SeparationSystem(config).eval()
    t0 = time.perf_counter()
    batches = list(eval_loader(config, args.data, limit=args.mixtures))
    load_s = time.perf_counter() - t0
    n = sum(b["mix_wav"].shape[0] for b in batches)

    # the earlier path: one metric call per mixture and row
    t0 = time.perf_counter()
    with torch.no_grad():
        for b in batches:
            s = b["source_wavs"].shape[1]
            rows = [b["mix_wav"][:, None].expand(-1, s, -1),
                    oracle_wavs(system.frontend, b["source_wavs"], b["mix_wav"], "ibm"),
                    oracle_wavs(system.frontend, b["source_wavs"], b["mix_wav"], "irm"),
                    masks_to_wavs(system.frontend, system(b)[1], b["mix_wav"], None)]
            for est in rows:
                for i in range(est.shape[0]):
                    valid = b["source_valid"][i]
                    score_mixture(SeparationScores(), b["source_wavs"][i][valid], est[i][valid])
    per_mixture_s = time.perf_counter() - t0

    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "refs.json"
        t0 = time.perf_counter()
        evaluate({"m": system}, batches, progress=False, cache=cache)
        cold_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        evaluate({"m": system}, batches, progress=False, cache=cache)
        warm_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    with torch.no_grad():
        for b in batches:
            system(b)
    model_s = time.perf_counter() - t0

    rows = {"earlier (per-mixture metric, all rows)": per_mixture_s, "batched metric, cold cache": cold_s,
            "batched metric, warm cache": warm_s}
    print(f"{n} mixtures, {args.threads} threads; loading {load_s:.1f} s ({n / load_s:.1f} mixtures/s), "
          f"model forward alone {model_s:.1f} s")
    print(f"{'path':<42} {'seconds':>8} {'mixtures/s':>11} {'vs earlier':>10}")
    for name, sec in rows.items():
        print(f"{name:<42} {sec:>8.1f} {n / sec:>11.2f} {per_mixture_s / sec:>9.1f}x")
    Path(args.out).write_text(json.dumps({"mixtures": n, "threads": args.threads, "load_s": load_s,
                                          "model_forward_s": model_s, "seconds": rows,
                                          "mixtures_per_s": {k: n / v for k, v in rows.items()}}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
