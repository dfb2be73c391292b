"""Run folders: everything needed to repeat or continue a run lives in one place.

    runs/<name>/
        config.yaml         the fully resolved config
        run.json            git revision (and whether the tree was dirty), seed, command, versions;
                            "resumed": the same for every restart, with the config keys it changed
        metrics.csv         Lightning CSV log (train/val losses, val SDR)
        checkpoints/        last.ckpt; best.ckpt (with validation); step<N>.ckpt (on request)
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

from tribert.config import dump_yaml
from tribert.errors import TribertError
from tribert.io import atomic_write_json, read_json


def git_revision() -> dict:
    """The source tree's git revision and whether it had uncommitted changes (None outside git)."""
    here = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                             timeout=10).stdout.strip() or None
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                                    capture_output=True, text=True, timeout=10).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        rev, dirty = None, None
    return {"revision": rev, "dirty": dirty if rev else None}


def new_run_dir(root: str | Path, name: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = Path(root) / f"{stamp}-{name}"
    i = 1
    while path.exists():
        path = Path(root) / f"{stamp}-{name}-{i}"
        i += 1
    path.mkdir(parents=True)
    return path


def _this_process() -> dict:
    """What ran: git revision, command, versions, host and time (``run.json``)."""
    import tribert

    return {"git": git_revision(), "command": sys.argv, "tribert": tribert.__version__, "torch": torch.__version__,
            "python": platform.python_version(), "host": platform.node(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S")}


def write_run_info(run_dir: Path, config) -> None:
    dump_yaml(config, run_dir / "config.yaml")
    atomic_write_json(run_dir / "run.json", {**_this_process(), "seed": config.train.seed})


def note_resume(run_dir: Path, changed: list[str]) -> None:
    """Add a restart to ``run.json``'s "resumed" list (what ran it, and the config keys it changed):
    a run continued under another revision says so. An unreadable run.json is kept beside as
    run.json.damaged and started afresh."""
    path = Path(run_dir) / "run.json"
    try:
        info = read_json(path, "run record")
    except (OSError, TribertError):
        if path.is_file():
            os.replace(path, path.with_name("run.json.damaged"))
        info = {}
    resumed = info.get("resumed") if isinstance(info.get("resumed"), list) else []
    info["resumed"] = [*resumed, {**_this_process(), "changed": changed}]
    atomic_write_json(path, info)
