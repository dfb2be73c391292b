"""The same pairs separated from prepared clip folders and from their MP4s: what the pose costs.

A checkpoint trained on SynthMUSIC's clip folders read the generator's exact skeletons. Given the
videos themselves, ``tribert separate`` detects pose with MediaPipe (or, with ``--no-pose``, sees
none): another input distribution. A checkpoint trained on clips prepared from the MP4s
(``tribert prepare``, MediaPipe pose) reads what ``separate`` gives it. For each solo pair (two
consecutive solos of ``--test``), the SDR of each stem against the clip's own audio in the mixture
(``tribert.demo.stem_sdr``), for every ``--checkpoint`` side by side on the same inputs:

* ``clip folders``: the prepared clips, their ground-truth pose (what ``tribert demo`` scores);
* ``mp4, mediapipe pose``: the clips' MP4s in ``--videos``, pose detected as `separate` does;
* ``mp4, no pose``: the same MP4s, the pose stream seeing no performer;
* ``mixture``: the unprocessed mixture, the floor.

Each input is decoded (and its pose detected) once, then separated by every checkpoint.

    python benchmarks/separate_from_video.py --checkpoint runs/<run>/checkpoints/last.ckpt \\
        [--checkpoint runs/<another run>/checkpoints/last.ckpt] \\
        --test data/synth-test/test --videos data/synth-test/videos --pairs 10 --out separate_from_video.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROWS = ("clip folders", "mp4, mediapipe pose", "mp4, no pose", "mixture")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, action="append", required=True,
                        help="a checkpoint to score (repeat to compare several on the same inputs)")
    parser.add_argument("--test", type=Path, required=True, help="prepared SynthMUSIC test clips")
    parser.add_argument("--videos", type=Path, required=True, help="their MP4s (<clip id>.mp4)")
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    import numpy as np

    from tribert.data.clip import Clip, solo_clips
    from tribert.demo import stem_sdr
    from tribert.errors import TribertError
    from tribert.io import atomic_write_text
    from tribert.separate import Separator
    from tribert.separate.inputs import load_video

    seps = {str(c): Separator.from_checkpoint(c) for c in args.checkpoint}
    first = next(iter(seps.values()))
    a, v = first.config.audio, first.config.video
    for name, sep in seps.items():  # one decoding serves every checkpoint only if they read alike
        if (sep.config.audio.sample_rate, sep.config.video.fps, sep.config.video.max_persons) != \
                (a.sample_rate, v.fps, v.max_persons):
            raise TribertError("the checkpoints read audio or video at other rates: score them one at a time", name)
    solos = solo_clips(args.test)
    pairs = [solos[i:i + 2] for i in range(0, 2 * args.pairs, 2) if i + 1 < len(solos)]
    table: dict[str, dict[str, dict[str, list[float]]]] = {name: {} for name in seps}
    for pair in pairs:
        clips = [Clip(p) for p in pair]
        videos = [args.videos / f"{c.meta.id}.mp4" for c in clips]
        if not all(x.is_file() for x in videos):
            raise TribertError(f"no MP4 for {[c.meta.id for c in clips]} in --videos", args.videos)
        key = " + ".join(c.meta.id for c in clips)
        inputs = {row: [load_video(x, a.sample_rate, v.fps, pose, persons=1, max_persons=v.max_persons)
                        for x in files]
                  for row, files, pose in ((ROWS[0], pair, "none"), (ROWS[1], videos, "mediapipe"),
                                           (ROWS[2], videos, "none"))}
        for name, sep in seps.items():
            row: dict[str, list[float]] = {}
            for kind, given in inputs.items():
                stems, mixture = stem_sdr(sep.separate(given), clips)
                row[kind] = [round(float(x), 2) for x in stems]
            row[ROWS[3]] = [round(float(x), 2) for x in mixture]
            table[name][key] = row
            print(name, key, row, flush=True)
    out = {"pairs": len(pairs), "checkpoints": {}}
    for name, sep in seps.items():
        means = {row: round(float(np.mean([x for r in table[name].values() for x in r[row]])), 2) for row in ROWS}
        trained = sep.system.hparams.get("train_pose_sources") or {}
        print(f"{name} (trained on pose from {trained or 'unrecorded'}): mean SDR per stem (dB): "
              + ", ".join(f"{k} {m}" for k, m in means.items()))
        out["checkpoints"][name] = {"train_pose_sources": trained, "mean": means, "pairs": table[name]}
    if args.out:
        atomic_write_text(args.out, json.dumps(out, indent=1))


if __name__ == "__main__":
    from tribert.errors import run_main

    run_main(main)
