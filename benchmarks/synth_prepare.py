"""Throughput of `tribert synth` (SynthMUSIC generation) and `tribert prepare` (video -> clip).

Generates ``--clips`` SynthMUSIC clips into a scratch folder with ``--workers`` processes, then
prepares their MP4s with :func:`tribert.data.prepare.prepare` (pose "none", and MediaPipe pose
if ``--mediapipe``), and reports clips per second, the extrapolated time for 1000 clips, and
SynthMUSIC's per-clip time by stage (CPU seconds inside one worker). The machine's load average
is recorded too: other processes on a shared machine slow every number down.

    python benchmarks/synth_prepare.py --clips 40 --workers 2 --out bench_synth.json
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path


def _row(name: str, clips: int, seconds: float, workers: int) -> dict:
    rate = clips / seconds if seconds > 0 else 0.0
    return {"stage": name, "clips": clips, "seconds": round(seconds, 3), "clips_per_s": round(rate, 3),
            "minutes_per_1000": round(1000 / rate / 60, 2) if rate else None,
            "core_s_per_clip": round(seconds * workers / clips, 3) if clips else None, "workers": workers}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=40, help="clips to generate and prepare (default 40)")
    ap.add_argument("--prepare-clips", type=int, default=None, help="clips to prepare (default: all generated)")
    ap.add_argument("--workers", type=int, default=2, help="worker processes (default 2: the target machine)")
    ap.add_argument("--duration", type=float, default=6.0, help="clip length in seconds")
    ap.add_argument("--seed", type=int, default=0, help="SynthMUSIC seed")
    ap.add_argument("--mediapipe", action="store_true", help="also time prepare with MediaPipe pose")
    ap.add_argument("--work-dir", type=Path, default=None, help="scratch folder (default: a temporary one, removed)")
    ap.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    from tribert.data.synth import generate
    from tribert.io import atomic_write_json

    work = args.work_dir or Path(tempfile.mkdtemp(prefix="tribert-bench-"))
    synth_dir = work / "synth"
    if synth_dir.exists():
        shutil.rmtree(synth_dir)
    rows = []
    load_before = os.getloadavg()
    tic = time.perf_counter()
    summary = generate(synth_dir, args.clips, seed=args.seed, duration=args.duration, workers=args.workers,
                       progress=False)
    rows.append(_row("synth", summary.generated, time.perf_counter() - tic, args.workers))
    stages = {k: round(v, 4) for k, v in summary.timings.items()}

    videos = sorted((synth_dir / "videos").glob("*.mp4"))[: args.prepare_clips or None]
    try:
        from tribert.data.prepare import prepare
    except ImportError:
        prepare = None
        print("tribert.data.prepare is not available: prepare not measured", file=sys.stderr)
    if prepare is not None:
        for pose in ["none"] + (["mediapipe"] if args.mediapipe else []):
            out = work / f"prepared-{pose}"
            if out.exists():
                shutil.rmtree(out)
            tic = time.perf_counter()
            # the clips' own length is the minimum: shorter --duration clips are measured too
            report = prepare(videos, out, pose=pose, workers=args.workers, progress=False,
                             min_duration=args.duration)
            seconds = time.perf_counter() - tic
            if report.failed:
                print(f"prepare (pose={pose}): {len(report.failed)} failed, e.g. {report.failed[0].reason}",
                      file=sys.stderr)
            rows.append(_row(f"prepare/{pose}", len(report.prepared), seconds, args.workers))
    result = {"rows": rows, "synth_stage_seconds_per_clip": stages, "cpu_count": os.cpu_count(),
              "load_average_before": [round(x, 2) for x in load_before],
              "load_average_after": [round(x, 2) for x in os.getloadavg()],
              "duration_s": args.duration}

    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"SynthMUSIC / prepare throughput ({args.workers} workers, {args.duration:g} s clips)")
    for col in ("stage", "clips", "seconds", "clips/s", "min per 1000", "core-s per clip"):
        table.add_column(col, justify="right" if col != "stage" else "left")
    for r in rows:
        table.add_row(r["stage"], str(r["clips"]), f"{r['seconds']:.1f}", f"{r['clips_per_s']:.2f}",
                      f"{r['minutes_per_1000']}", f"{r['core_s_per_clip']}")
    console = Console()
    console.print(table)
    console.print("synth stages (s per clip, one worker): " + ", ".join(f"{k} {v:.3f}" for k, v in stages.items()))
    console.print(f"load average before/after: {result['load_average_before']} / {result['load_average_after']}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(args.out, result)
    if args.work_dir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    from tribert.errors import run_main

    run_main(main)
