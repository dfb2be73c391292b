"""Double Ctrl-C during ``tribert prepare --workers 2``, repeated: how often does it hang?

What ``tests/test_prepare.py::test_ctrl_c_stops_the_workers_and_leaves_no_half_clip`` does once
(24 generated 6-s videos at 32 fps, SIGINT to the process group twice once a clip is prepared),
``--runs`` times with random gaps (0-0.5 s before, 0-60 ms between), each given 60 s to exit. A
hang prints the state and the Python stacks of every process of the group (``-X faulthandler``,
SIGABRT). Run it beside busy loops to reproduce a loaded machine (the hang needed load)::

    for i in 1 2 3; do timeout 900 python3 -c "while True: pass" & done
    python benchmarks/stress_prepare_ctrl_c.py --runs 40 --out stress.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--out", type=Path, default=None, help="JSON with the counts")
    args = parser.parse_args()

    from test_prepare import make_video, terminal_signals
    from tribert.data.clip import list_clips
    from tribert.io import atomic_write_text

    root = Path(tempfile.mkdtemp(prefix="stress-prepare-"))
    src = root / "videos"
    src.mkdir()
    for i in range(24):
        make_video(src / f"v{i:02d}.mp4", 6.0, seed=i)
    codes: list[int | None] = []
    try:
        for run in range(args.runs):
            out = root / f"out{run}"
            proc = subprocess.Popen([sys.executable, "-X", "faulthandler", "-m", "tribert.cli", "prepare", str(src),
                                     "--out", str(out), "--no-pose", "--workers", "2", "--fps", "32"],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                                    preexec_fn=terminal_signals)
            start = time.monotonic()
            while time.monotonic() - start < 120 and not (out.is_dir() and list_clips(out)):
                time.sleep(0.01)
            time.sleep(random.uniform(0, 0.5))
            os.killpg(proc.pid, signal.SIGINT)
            time.sleep(random.uniform(0, 0.06))
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.communicate(timeout=60)
                codes.append(proc.returncode)
                print(f"run {run}: exit {proc.returncode}", flush=True)
            except subprocess.TimeoutExpired:
                codes.append(None)
                print(f"run {run}: HANG", flush=True)
                subprocess.run(["ps", "-o", "pid,ppid,stat,wchan:30,cmd", "-g", str(proc.pid)])
                os.killpg(proc.pid, signal.SIGABRT)
                time.sleep(3)
                os.killpg(proc.pid, signal.SIGKILL)
                print(proc.communicate()[1][-20000:], flush=True)
            shutil.rmtree(out, ignore_errors=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    hangs = sum(c is None for c in codes)
    print(f"{len(codes)} runs: {hangs} hung, exit codes {sorted(set(c for c in codes if c is not None))}")
    if args.out:
        atomic_write_text(args.out, json.dumps({"runs": len(codes), "hangs": hangs, "codes": codes}))


if __name__ == "__main__":
    main()
