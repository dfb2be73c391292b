"""How `tribert separate` does on many solo pairs, not one: the spread behind the demo's pair.

`tribert demo` separates one fixed pair (the first two solos of its test split) and reports each
stem's SDR gain over the mixture. One pair is a small sample. This script runs the same separation
(``Separator.separate`` on two prepared clips: their mean as the mixture, windows of the crop
length joined by overlap-add) on the first ``--pairs`` consecutive solo pairs of a test folder and
prints the distribution of the per-stem gains, beside two controls on the same pairs that tell the
windowing apart from the span scored:

* ``whole clip``: what the demo reports (SDR over the full clip);
* ``first crop, windowed``: the same estimates, scored on the first crop only;
* ``first crop, one window``: the first crop of the mixture separated alone (no overlap-add).

    python benchmarks/separate_pairs.py --checkpoint demo-output/runs/<run>/checkpoints/last.ckpt \\
        --test demo-output/synth/test --pairs 25 --out separate_pairs.json
"""

from __future__ import annotations

import argparse
from pathlib import Path


def pair_gains(separator, pair: list[Path]) -> dict[str, list[float]]:
    """Per-stem SDR gain over the mixture (dB) of one pair, for the three spans / runs above."""
    import numpy as np

    from tribert.data.clip import Clip
    from tribert.demo import mixture_references
    from tribert.metrics import bss_eval

    crop = separator.config.audio.crop_samples
    clips = [Clip(p) for p in pair]
    refs = mixture_references(clips, min(c.meta.num_samples for c in clips))  # [2, n]
    n = refs.shape[1]
    mix = refs.sum(0)
    whole = np.stack(separator.separate(pair).stems)[:, :n]
    alone = np.stack(separator.separate(pair, mixture=mix[:crop]).stems)[:, :crop]
    mixes = np.stack([mix] * len(pair))

    def gains(est, span):
        return list(bss_eval(refs[:, :span], est[:, :span])[0] - bss_eval(refs[:, :span], mixes[:, :span])[0])

    return {"whole clip": gains(whole, n), "first crop, windowed": gains(whole, crop),
            "first crop, one window": gains(alone, crop)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", required=True, help="a trained checkpoint (or exported weights)")
    p.add_argument("--test", required=True, help="a folder of prepared test clips")
    p.add_argument("--pairs", type=int, default=25, help="consecutive solo pairs to separate")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--out", default="separate_pairs.json", help="JSON results")
    args = p.parse_args()
    if args.pairs < 1:
        p.error(f"--pairs must be at least 1, got {args.pairs}")

    import numpy as np
    import torch

    from tribert.data.clip import solo_clips
    from tribert.errors import TribertError
    from tribert.io import atomic_write_json
    from tribert.separate import Separator

    torch.set_num_threads(args.threads)
    test = Path(args.test)
    try:
        separator = Separator.from_checkpoint(args.checkpoint)
        solos = solo_clips(test)
        if len(solos) < 2 * args.pairs:
            raise TribertError(f"{len(solos)} solo clips, {2 * args.pairs} needed for --pairs {args.pairs}", test)
        stems: dict[str, list[float]] = {}
        names = []
        for k in range(args.pairs):
            pair = solos[2 * k:2 * k + 2]
            names += [p.name for p in pair]
            for row, g in pair_gains(separator, pair).items():
                stems.setdefault(row, []).extend(float(x) for x in g)
    except TribertError as err:
        raise SystemExit(f"separate_pairs: {err}") from None

    print(f"{'span scored':<24} | {'mean':>6} | {'median':>6} | {'>= +4 dB':>8} | {'both of a pair >= +4':>20}")
    summary = {}
    for row, g in stems.items():
        g = np.array(g)
        both = float(np.mean((g[0::2] >= 4) & (g[1::2] >= 4)))
        summary[row] = {"mean": float(g.mean()), "median": float(np.median(g)), "share_ge_4db": float(np.mean(g >= 4)),
                        "pairs_both_ge_4db": both}
        print(f"{row:<24} | {g.mean():+6.2f} | {np.median(g):+6.2f} | {np.mean(g >= 4):8.2f} | {both:20.2f}")
    first = stems["whole clip"][:2]
    print(f"the demo's pair ({names[0]}, {names[1]}), whole clip: {first[0]:+.2f} / {first[1]:+.2f} dB")
    atomic_write_json(args.out, {"checkpoint": args.checkpoint, "test": str(test), "pairs": args.pairs,
                                 "stems": names, "gains_db": stems, "summary": summary})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    from tribert.errors import run_main

    run_main(main)
