"""Run folders: everything needed to repeat or continue a run lives in one place.

    runs/<name>/
        config.yaml         the fully resolved config
        run.json            git revision (and whether the tree was dirty), seed, command, versions
        metrics.csv         Lightning CSV log (train/val losses, val SDR)
        checkpoints/        epoch*.ckpt every epoch, last.ckpt, best.ckpt
"""

from __future__ import annotations

import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

from tribert.config import dump_yaml
from tribert.io import atomic_write_json


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


def write_run_info(run_dir: Path, config) -> None:
    import tribert

    dump_yaml(config, run_dir / "config.yaml")
    atomic_write_json(run_dir / "run.json", {
        "git": git_revision(),
        "seed": config.train.seed,
        "command": sys.argv,
        "tribert": tribert.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "host": platform.node(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    })
