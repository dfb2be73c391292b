"""The separation comparison (paper Table 1 shape) on SynthMUSIC, every model at equal budget.

Trains TriBERT-small, its three ablations and the three baselines with the same recipe
(configs/synth_small.yaml), the same data, the same number of optimisation steps and the same
seed, then scores all of them on one fixed list of test mixtures from a SynthMUSIC set generated
with a seed training never saw, beside the mixture and the oracle masks.

    tribert synth --out data/synth --clips 600 --seed 0
    tribert synth --out data/synth-test --clips 200 --seed 1 --splits 0,0,1
    python benchmarks/separation_table.py --train data/synth/train --test data/synth-test/test \
        --steps 500 --out separation_table.json

Equal budget is counted in steps (batch 12), not minutes: wall-clock time on a shared 2-core
machine is noisy, and a per-step budget stays fair whatever else runs. The minutes each model
took are reported too.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from tribert.errors import TribertError

VARIANTS = {  # name -> overrides of configs/synth_small.yaml
    "TriBERT-small": [],
    "TriBERT w/o pose": ["model.use_pose=false"],
    "TriBERT w/o vision": ["model.use_vision=false"],
    "TriBERT w/o co-attention": ["model.coattention=false"],
    "Sound-of-Pixels": ["model.kind=sound_of_pixels"],
    "MUSIC-Gesture-style": ["model.kind=music_gesture"],
    "Audio-only (class label)": ["model.kind=audio_only"],
}


def main() -> None:
    from tribert.engine.checkpoint import load_system
    from tribert.config import Config
    from tribert.engine.evaluate import evaluate, format_table, write_results
    from tribert.engine.train import eval_loader, train

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train", required=True, help="prepared training clips")
    p.add_argument("--test", required=True, help="prepared test clips")
    p.add_argument("--steps", type=int, default=500, help="training steps per variant")
    p.add_argument("--mixtures", type=int, default=0, help="test mixtures to score (0: all)")
    p.add_argument("--runs", default="runs/table", help="folder of the runs (one per variant)")
    p.add_argument("--only", default="", help="comma-separated subset of the variants")
    p.add_argument("--out", default="separation_table.json", help="JSON results")
    args = p.parse_args()

    asked = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in asked if n not in VARIANTS]
    if unknown:
        raise TribertError(f"--only: unknown variant(s) {', '.join(map(repr, unknown))}; "
                           f"the variants: {', '.join(VARIANTS)}")
    names = [n for n in VARIANTS if not asked or n in asked]
    systems, minutes, checkpoints = {}, {}, {}
    for name in names:
        cfg = Config.load("synth_small", [f"data.train_dir={args.train}", f"train.max_steps={args.steps}",
                                          "train.max_minutes=0", *VARIANTS[name]])
        t0 = time.time()
        run = train(cfg, runs_dir=args.runs, name=name.lower().replace(" ", "-").replace("/", ""),
                    progress=False)
        minutes[name] = (time.time() - t0) / 60
        checkpoints[name] = str(run / "checkpoints" / "last.ckpt")
        systems[name] = load_system(checkpoints[name])
        print(f"trained {name}: {args.steps} steps in {minutes[name]:.1f} min -> {run}", flush=True)
    first = next(iter(systems.values()))
    results = evaluate(systems, eval_loader(first.config, args.test, limit=args.mixtures), progress=False)
    print(format_table(results, f"SynthMUSIC separation, {args.steps} steps x batch 12 each (SDR / SIR / SAR, dB)"))
    for name in names:
        print(f"  {name}: {minutes[name]:.1f} min of training")
    write_results(args.out, results, {"steps": args.steps, "train": args.train, "test": args.test,
                                      "minutes": minutes, "checkpoints": checkpoints})
    print(f"wrote {Path(args.out)}")


if __name__ == "__main__":
    from tribert.errors import run_main

    run_main(main)
