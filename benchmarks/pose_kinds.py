"""How a detector's pose differs from exact pose on the same solos: the numbers behind
``tribert.data.pose_augment``.

For each solo of ``--exact`` (SynthMUSIC clip folders: the generator's skeletons) that also has a
clip in ``--detected`` (the same clips' MP4s prepared with ``tribert prepare``: MediaPipe pose,
matched by the source video's name), both in a 224-px frame, per keypoint: how often it is given
(confidence > 0), its mean confidence where given, and where both give it, the distance between
the two (a clip-wide offset: the norm of the mean over clips of each clip's mean offset, and the
spread of that offset across clips; within each clip the frame-to-frame jitter around it).

    python benchmarks/pose_kinds.py --exact data/synth-test/test --detected data/synth-test-mp/test \\
        --clips 60 --out benchmarks/results/pose_kinds_synth_test.json
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

SIDE = 224  # the frame both kinds are compared in (pixels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exact", type=Path, required=True, help="clip folders with exact pose (SynthMUSIC)")
    parser.add_argument("--detected", type=Path, required=True, help="the same clips prepared from their videos")
    parser.add_argument("--clips", type=int, default=60, help="solos to compare (the first N with both)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    import numpy as np

    from tribert.data.clip import Clip, list_clips
    from tribert.errors import TribertError
    from tribert.skeleton import KEYPOINTS, LEFT_HAND_START, NUM_BODY

    detected = {Path(c.meta.source).stem: c for c in map(Clip, list_clips(args.detected))}

    def pose_224(clip: Clip) -> np.ndarray:  # [T, 68, 3] of the first person, x and y in a 224-px frame
        w, h = clip.frame_size()
        p = clip.pose(1)[:, 0].astype(np.float64)
        p[..., 0] *= SIDE / w
        p[..., 1] *= SIDE / h
        return p

    given_e, given_d, conf_e, conf_d, offset, jitter, clip_ids = [], [], [], [], [], [], []
    for clip in map(Clip, list_clips(args.exact)):
        if len(clip.meta.labels) != 1 or clip.meta.id not in detected:
            continue
        e, d = pose_224(clip), pose_224(detected[clip.meta.id])
        n = min(len(e), len(d))
        e, d = e[:n], d[:n]
        se, sd = e[..., 2] > 0, d[..., 2] > 0
        given_e.append(se.mean(0))
        given_d.append(sd.mean(0))
        conf_e.append(np.where(se, e[..., 2], np.nan))
        conf_d.append(np.where(sd, d[..., 2], np.nan))
        diff = np.where((se & sd)[..., None], d[..., :2] - e[..., :2], np.nan)  # [T, 68, 2]
        with warnings.catch_warnings():  # a point never given by both: NaN, left out of the means
            warnings.simplefilter("ignore", RuntimeWarning)
            offset.append(np.nanmean(diff, 0))
            jitter.append(np.nanmean(np.linalg.norm(diff - np.nanmean(diff, 0), axis=-1), 0))
        clip_ids.append(clip.meta.id)
        if len(clip_ids) == args.clips:
            break
    if not clip_ids:
        raise TribertError("no solo of --exact has a clip of the same video in --detected", args.detected)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        off = np.stack(offset)  # [clips, 68, 2]
        rows = {name: {"given_exact": float(np.mean(given_e, 0)[k]), "given_detected": float(np.mean(given_d, 0)[k]),
                       "confidence_exact": float(np.nanmean(np.concatenate(conf_e)[:, k])),
                       "confidence_detected": float(np.nanmean(np.concatenate(conf_d)[:, k])),
                       "offset_px": float(np.linalg.norm(np.nanmean(off[:, k], 0))),
                       "offset_spread_px": float(np.nanmean(np.nanstd(off[:, k], 0))),
                       "jitter_px": float(np.nanmean(np.stack(jitter)[:, k]))}
                for k, name in enumerate(KEYPOINTS)}
        trunk = [KEYPOINTS.index(n) for n in ("nose", "left_shoulder", "right_shoulder", "left_hip", "right_hip",
                                                "head", "neck", "hip")]
        per_clip = np.nanmean(np.linalg.norm(off[:, trunk], axis=-1), 1)  # each clip's offset of the trunk
        summary = {"clips": len(clip_ids),
                   "hands_given_exact": float(np.mean(given_e, 0)[LEFT_HAND_START:].mean()),
                   "hands_given_detected": float(np.mean(given_d, 0)[LEFT_HAND_START:].mean()),
                   "performer_found_detected": float(np.mean([g[:NUM_BODY].max() for g in given_d])),
                   "trunk_offset_px_percentiles_10_50_90_max": [round(float(x), 1) for x in
                                                                 np.nanpercentile(per_clip, [10, 50, 90, 100])]}
    print(f"{len(clip_ids)} solos; x, y in a {SIDE}-px frame")
    print(f"{'keypoint':22s} given: exact detected | confidence: exact detected | offset  spread  jitter (px)")
    for name, r in rows.items():
        if name.startswith(("left_hand_", "right_hand_")) and not name.endswith(("wrist", "thumb4", "middle4")):
            continue  # three points per hand are enough to read; the JSON has all
        print(f"{name:22s} {r['given_exact']:5.2f} {r['given_detected']:8.2f} | {r['confidence_exact']:10.2f} "
              f"{r['confidence_detected']:8.2f} | {r['offset_px']:6.1f} {r['offset_spread_px']:7.1f} {r['jitter_px']:7.1f}")
    print(json.dumps(summary))
    if args.out:
        from tribert.io import atomic_write_json

        atomic_write_json(args.out, {"summary": summary, "keypoints": rows, "clip_ids": clip_ids})


if __name__ == "__main__":
    from tribert.errors import run_main

    run_main(main)
