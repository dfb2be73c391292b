"""`tribert prepare` against a plain PyAV decode loop, and pose detection frames/s.

On the same MP4s, one process, in one run:

1. a plain PyAV loop: decode every video frame to RGB and the whole audio track (nothing kept,
   nothing written): the floor any preparation pays;
2. ``prepare`` without pose: what it adds (frames resampled to 8 fps and resized, JPEG writes,
   audio resampled to 11025 Hz and written, metadata);
3. with ``--mediapipe``: ``prepare`` with MediaPipe holistic pose, reported as pose frames/s.

    python benchmarks/prepare_decode.py --videos data/synth-test/videos --limit 20 --out prepare_decode.json
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path


def plain_decode(path: Path) -> tuple[int, float]:
    """Decode every frame (RGB) and all audio of ``path``; returns (video frames, audio seconds)."""
    import av

    frames, audio_s = 0, 0.0
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            frame.to_ndarray(format="rgb24")
            frames += 1
    with av.open(str(path)) as container:
        if container.streams.audio:
            for frame in container.decode(audio=0):
                frame.to_ndarray()
                audio_s += frame.samples / frame.sample_rate
    return frames, audio_s


def main() -> None:
    from tribert.data.prepare import prepare
    from tribert.io import atomic_write_json

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--videos", required=True, help="a folder of MP4s (e.g. a SynthMUSIC videos/ folder)")
    p.add_argument("--limit", type=int, default=20, help="MP4s to use (the first N by name)")
    p.add_argument("--mediapipe", action="store_true", help="also time prepare with MediaPipe pose")
    p.add_argument("--out", default="prepare_decode.json", help="JSON results")
    args = p.parse_args()
    videos = sorted(Path(args.videos).glob("*.mp4"))[: args.limit]
    if not videos:
        raise SystemExit(f"no .mp4 files in {args.videos}")

    rows = []
    t0 = time.perf_counter()
    decoded = [plain_decode(v) for v in videos]
    plain_s = time.perf_counter() - t0
    n_frames = sum(f for f, _ in decoded)
    audio_s = sum(a for _, a in decoded)
    rows.append({"path": "plain PyAV decode (RGB frames + audio)", "seconds": plain_s})
    work = Path(tempfile.mkdtemp(prefix="tribert-prepare-bench-"))
    try:
        for pose in ["none"] + (["mediapipe"] if args.mediapipe else []):
            t0 = time.perf_counter()
            report = prepare(videos, work / pose, pose=pose, workers=1, progress=False, min_duration=1.0)
            seconds = time.perf_counter() - t0
            if report.failed:
                raise SystemExit(f"prepare failed: {report.failed[0].reason}")
            stored = sum(len(list((work / pose / v.stem / "frames").iterdir())) for v in videos)
            rows.append({"path": f"tribert prepare, pose {pose}, 1 worker", "seconds": seconds,
                         "stored_frames": stored})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for r in rows:
        r["clips_per_s"] = len(videos) / r["seconds"]
        r["source_frames_per_s"] = n_frames / r["seconds"]
        r["vs_plain_decode"] = plain_s / r["seconds"]
    pose_rows = [r for r in rows if "mediapipe" in r["path"]]
    if pose_rows:  # pose time = its run minus the pose-free run, per stored frame
        extra = pose_rows[0]["seconds"] - rows[1]["seconds"]
        pose_rows[0]["pose_frames_per_s"] = pose_rows[0]["stored_frames"] / extra if extra > 0 else None
    print(f"{len(videos)} videos, {n_frames} source frames, {audio_s:.0f} s of audio, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'path':45s} {'seconds':>8s} {'clips/s':>8s} {'frames/s':>9s} {'vs plain':>9s}")
    for r in rows:
        print(f"{r['path']:45s} {r['seconds']:8.2f} {r['clips_per_s']:8.2f} {r['source_frames_per_s']:9.0f} "
              f"{r['vs_plain_decode']:8.2f}x" + (f"   pose {r['pose_frames_per_s']:.1f} frames/s"
                                                 if r.get("pose_frames_per_s") else ""))
    atomic_write_json(args.out, {"rows": rows, "videos": len(videos), "source_frames": n_frames, "audio_s": audio_s,
                                 "cpus": os.cpu_count(), "load_average": os.getloadavg()[0]})


if __name__ == "__main__":
    from tribert.errors import run_main

    run_main(main)
