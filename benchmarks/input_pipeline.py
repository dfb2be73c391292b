"""Does the data loader keep the training step fed? Loader batches/s against step batches/s.

In one run, for one recipe (default ``synth_small``, batch 12):

1. the loader alone: batches per second that ``train_loader`` delivers with 0, 1, 2 ... workers
   (first batch excluded: worker start-up);
2. the training step alone: forward + backward + optimiser step per second on one batch held in
   memory (what the step can consume);
3. the two together: the real loop (loader with W workers feeding the step), against (2).

Rows marked "cached" keep each clip's audio, pose and resized frames in memory
(``data.cache_clips``, the SynthMUSIC recipes' setting), read once before the clock starts; the
other rows read every clip from disk (the setting for data sets larger than memory).

The ratio loader / step is the margin (the target is >= 2x: the loader must never starve the
step). On a 2-core machine the loader's workers and the step share the same cores, so (3) is
the number that counts there; on a GPU machine the step runs on the device.

    python benchmarks/input_pipeline.py --train data/synth/train --batches 30 --out input_pipeline.json
"""

from __future__ import annotations

import argparse
import os
import time


def main() -> None:
    import torch

    from tribert.config import Config
    from tribert.engine.system import SeparationSystem
    from tribert.engine.train import train_loader
    from tribert.io import atomic_write_json

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train", required=True, help="prepared training clips")
    p.add_argument("--config", default="synth_small", help="recipe (name or YAML path)")
    p.add_argument("--batches", type=int, default=30, help="batches timed per row (after the first)")
    p.add_argument("--workers", default="0,1,2", help="loader worker counts to time, comma-separated")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a config override for every row, e.g. data.stored_pose=true (repeatable)")
    p.add_argument("--loader-only", action="store_true",
                   help="only the loader rows (a GPU recipe, whose step a CPU cannot time: train_speed.py does)")
    p.add_argument("--out", default="input_pipeline.json", help="JSON results")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    def loader(workers: int, cache: bool = False):
        config = Config.load(args.config, [*args.set, f"data.train_dir={args.train}", f"data.num_workers={workers}",
                                           f"train.epoch_size={(args.batches + 1) * 12}",
                                           f"data.cache_clips={str(cache).lower()}"])
        batches = train_loader(config)
        batches.dataset.preload()  # cached: every clip read once before the clock starts
        return config, batches

    def rate_of(batches, step=None) -> float:
        it = iter(batches)
        first = next(it)
        if step:
            step(first)
        t0, n = time.perf_counter(), 0
        for b in it:
            if step:
                step(b)
            n += 1
            if n == args.batches:
                break
        return n / (time.perf_counter() - t0)

    workers = [int(x) for x in args.workers.split(",")]
    rows, step, step_rate = [], None, None
    if not args.loader_only:
        config, _ = loader(0)
        system = SeparationSystem(config).train()
        opt = torch.optim.AdamW(system.parameters(), lr=1e-3)

        def step(batch) -> None:
            out, mask_logits = system(batch)
            loss = system.losses(batch, out, mask_logits)["loss"]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        held = next(iter(loader(0)[1]))
        step_rate = rate_of([held] * (args.batches + 1), step)
        rows.append({"what": "training step alone (batch in memory)", "workers": None, "batches_per_s": step_rate})
    # Cached clips: without a worker beside the step (the SynthMUSIC recipes); with the last
    # worker count for the loader alone (a GPU machine's cores, whose step this CPU cannot time).
    cached_workers = workers[-1] if args.loader_only else 0
    for w in workers:
        rows.append({"what": "loader alone", "workers": w, "batches_per_s": rate_of(loader(w)[1])})
    rows.append({"what": "loader alone, clips cached in memory", "workers": cached_workers,
                 "batches_per_s": rate_of(loader(cached_workers, cache=True)[1])})
    if step is not None:
        for w in workers:
            rows.append({"what": "loader feeding the step", "workers": w,
                         "batches_per_s": rate_of(loader(w)[1], step)})
        rows.append({"what": "loader feeding the step, clips cached", "workers": 0,
                     "batches_per_s": rate_of(loader(0, cache=True)[1], step)})
    for r in rows:
        r["vs_step"] = r["batches_per_s"] / step_rate if step_rate else None
    print(f"{args.config} {' '.join(args.set)}, batch 12, {args.threads} torch threads, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'what':42s} {'workers':>7s} {'batches/s':>10s} {'vs step':>8s}")
    for r in rows:
        print(f"{r['what']:42s} {str(r['workers'] if r['workers'] is not None else '-'):>7s} "
              f"{r['batches_per_s']:10.2f} " + (f"{r['vs_step']:7.2f}x" if r["vs_step"] else f"{'-':>8s}"))
    atomic_write_json(args.out, {"rows": rows, "config": args.config, "set": args.set, "threads": args.threads,
                                 "cpus": os.cpu_count(), "load_average": os.getloadavg()[0], "torch": torch.__version__})


if __name__ == "__main__":
    from tribert.errors import run_main

    run_main(main)
