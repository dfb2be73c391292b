"""How separation depends on the length of what is separated: pieces of solo pairs, 0.1 s to 4.5 s.

``tribert separate`` runs the model over windows of ``audio.crop_samples`` (2.97 s for
``synth_small``); a mixture shorter than one window is looped to fill it (up to 7ad283b it was
padded with silence, and so was the last window of any recording: run this script with that
checkout's ``src`` first on ``PYTHONPATH`` to compare). For each solo pair (two consecutive solos
of ``--test``, prepared clip folders with their own pose), the videos and their 1/N mixture are
cut to start at ``--start`` seconds (past a clip's first notes) and the mixture is cut again to
each length; the separated stems are scored against the clips' audio as it sits in the mixture,
beside the unprocessed mixture. Pieces whose references are silent are left out and counted.

    python benchmarks/input_length.py --checkpoint runs/<run>/checkpoints/last.ckpt \\
        --test data/synth-test/test --pairs 15 --out input_length.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

LENGTHS = (0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--test", type=Path, required=True, help="prepared SynthMUSIC test clips")
    parser.add_argument("--pairs", type=int, default=15)
    parser.add_argument("--start", type=float, default=1.5, help="seconds cut from the start of each pair")
    parser.add_argument("--lengths", type=str, default=",".join(map(str, LENGTHS)), help="seconds, comma-separated")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    try:
        lengths = [float(x) for x in args.lengths.split(",")]
    except ValueError:
        parser.error(f"--lengths must be seconds separated by commas, got {args.lengths!r}")
    if not all(x > 0 for x in lengths):
        parser.error(f"--lengths must be positive, got {args.lengths!r}")

    import numpy as np
    import torch

    from tribert.data.clip import Clip, solo_clips
    from tribert.demo import mixture_references
    from tribert.metrics import bss_eval
    from tribert.io import atomic_write_text
    from tribert.separate import Separator, VideoInput, load_video

    torch.set_num_threads(args.threads)
    sep = Separator.from_checkpoint(args.checkpoint)
    a, v = sep.config.audio, sep.config.video
    solos = solo_clips(args.test)
    pairs = [solos[i:i + 2] for i in range(0, 2 * args.pairs, 2) if i + 1 < len(solos)]
    scores: dict[float, dict[str, list[float]]] = {x: {"stems": [], "mixture": []} for x in lengths}
    for pair in pairs:
        clips = [Clip(p) for p in pair]
        first = int(args.start * a.sample_rate)
        inputs = []
        for path in pair:  # the videos cut to begin at --start: frames, audio and pose alike
            x = load_video(path, a.sample_rate, v.fps, "none", persons=1, max_persons=v.max_persons)
            inputs.append(VideoInput(x.name, x.frames[np.arange(round(args.start * x.fps), len(x.frames))],
                                     x.audio[first:], x.pose[round(args.start * x.pose_fps):], x.fps, x.pose_fps,
                                     x.path, x.pose_source))
        refs = mixture_references(clips, min(c.meta.num_samples for c in clips))[:, first:]  # [2, n]
        mix = refs.sum(0).astype(np.float32)
        for seconds in lengths:
            n = min(round(seconds * a.sample_rate), len(mix))
            stems = np.stack([s[:n] for s in sep.separate(inputs, mixture=mix[:n]).stems])
            scores[seconds]["stems"] += [float(x) for x in bss_eval(refs[:, :n], stems)[0]]
            scores[seconds]["mixture"] += [float(x) for x in bss_eval(refs[:, :n], np.stack([mix[:n]] * 2))[0]]
    window = a.crop_samples / a.sample_rate
    print(f"{args.checkpoint}: {len(pairs)} pairs from {args.start} s, the model's window {window:.2f} s")
    print("| length (s) | stems | mixture | gain | stems scored |\n|---|---|---|---|---|")
    rows = {}
    for seconds in lengths:
        s, m = np.array(scores[seconds]["stems"]), np.array(scores[seconds]["mixture"])
        ok = np.isfinite(s) & np.isfinite(m)  # a silent reference has no score
        rows[str(seconds)] = {"stems": round(float(s[ok].mean()), 2), "mixture": round(float(m[ok].mean()), 2),
                              "gain": round(float((s - m)[ok].mean()), 2), "scored": int(ok.sum()), "of": len(s)}
        r = rows[str(seconds)]
        print(f"| {seconds} | {r['stems']} | {r['mixture']} | {r['gain']:+.2f} | {r['scored']}/{r['of']} |")
    if args.out:
        atomic_write_text(args.out, json.dumps({"checkpoint": str(args.checkpoint), "pairs": len(pairs),
                                                "start": args.start, "window_s": round(window, 3),
                                                "lengths": rows}, indent=1))


if __name__ == "__main__":
    from tribert.errors import run_main

    run_main(main)
