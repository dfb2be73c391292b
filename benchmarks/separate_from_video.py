"""The same pairs separated from prepared clip folders and from their MP4s: what the pose costs.

A checkpoint trained on SynthMUSIC's clip folders read the generator's exact skeletons. Given the
videos themselves, ``tribert separate`` detects pose with MediaPipe (or, with ``--no-pose``, sees
none): another input distribution. For each solo pair (two consecutive solos of ``--test``), the
SDR of each stem against the clip's own audio in the mixture (``tribert.demo.stem_sdr``), for:

* ``clip folders``: the prepared clips, their ground-truth pose (what ``tribert demo`` scores);
* ``mp4, mediapipe pose``: the clips' MP4s in ``--videos``, pose detected as `separate` does;
* ``mp4, no pose``: the same MP4s, the pose stream seeing no performer;
* ``mixture``: the unprocessed mixture, the floor.

    python benchmarks/separate_from_video.py --checkpoint runs/<run>/checkpoints/last.ckpt \\
        --test data/synth-test/test --videos data/synth-test/videos --pairs 3 --out separate_from_video.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROWS = ("clip folders", "mp4, mediapipe pose", "mp4, no pose", "mixture")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--test", type=Path, required=True, help="prepared SynthMUSIC test clips")
    parser.add_argument("--videos", type=Path, required=True, help="their MP4s (<clip id>.mp4)")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    import numpy as np

    from tribert.data.clip import Clip, solo_clips
    from tribert.demo import stem_sdr
    from tribert.errors import TribertError
    from tribert.separate import Separator

    sep = Separator.from_checkpoint(args.checkpoint)
    solos = solo_clips(args.test)
    pairs = [solos[i:i + 2] for i in range(0, 2 * args.pairs, 2) if i + 1 < len(solos)]
    table: dict[str, dict[str, list[float]]] = {}
    for pair in pairs:
        clips = [Clip(p) for p in pair]
        videos = [args.videos / f"{c.meta.id}.mp4" for c in clips]
        if not all(v.is_file() for v in videos):
            raise TribertError(f"no MP4 for {[c.meta.id for c in clips]} in --videos", args.videos)
        row: dict[str, list[float]] = {}
        for name, inputs, pose in ((ROWS[0], pair, "none"), (ROWS[1], videos, "mediapipe"), (ROWS[2], videos, "none")):
            stems, mixture = stem_sdr(sep.separate(inputs, pose=pose), clips)
            row[name] = [round(float(x), 2) for x in stems]
        row[ROWS[3]] = [round(float(x), 2) for x in mixture]
        key = " + ".join(c.meta.id for c in clips)
        table[key] = row
        print(key, row, flush=True)
    means = {name: round(float(np.mean([v for row in table.values() for v in row[name]])), 2) for name in ROWS}
    print("mean SDR per stem (dB): " + ", ".join(f"{k} {v}" for k, v in means.items()))
    if args.out:
        args.out.write_text(json.dumps({"checkpoint": str(args.checkpoint), "pairs": table, "mean": means}, indent=1))


if __name__ == "__main__":
    main()
