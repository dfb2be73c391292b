"""One exception type for every problem a user can fix: bad files, bad configs, bad arguments.

The CLI prints ``TribertError`` as one line (no traceback) and exits non-zero; anything else is a
bug in tribert and keeps its traceback.
"""

from __future__ import annotations

import signal
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator


class TribertError(Exception):
    """A user-facing error. ``str(err)`` is a single line naming the file (if any) and the reason."""

    def __init__(self, reason: str, path: str | Path | None = None):
        self.path = None if path is None else str(path)
        self.reason = " ".join(str(reason).split())  # always one line
        super().__init__(f"{self.path}: {self.reason}" if self.path else self.reason)


def first_line(err: BaseException, limit: int = 160) -> str:
    """A library exception's first line for a one-line error: cut at a word before ``limit``
    characters, and the exception's type where it has no message (numpy's EOFError, a KeyError of '')."""
    text = (str(err).strip().splitlines() or [""])[0].strip()
    if not text:
        return type(err).__name__
    if len(text) > limit:
        text = text[:limit].rsplit(" ", 1)[0] + " ..."
    return text


class MediaError(TribertError):
    """A video or audio file that cannot be read or written."""


class ConfigError(TribertError):
    """A config file or value that is not valid."""


class CheckpointError(TribertError):
    """A checkpoint that cannot be loaded into the requested model."""


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on Ctrl-C (or SIGTERM). ``str(err)`` is one line: the step reached, the checkpoint that
    holds the work, and the command that continues it."""

    def __init__(self, run_dir: str | Path, step: int, saved_step: int | None, signal_name: str = "Ctrl-C"):
        self.run_dir, self.step, self.saved_step = str(run_dir), step, saved_step
        self.exit_code = 143 if signal_name == "SIGTERM" else 130  # as a shell reports the signal
        if saved_step is None:
            where = "no checkpoint was saved yet: start the run again"
        else:
            where = (f"checkpoints/last.ckpt holds step {saved_step}: continue with "
                     f"`tribert train --resume {self.run_dir}`")
        super().__init__(f"training stopped on {signal_name} at step {step}; {where}")


@contextmanager
def sigterm_unwinds() -> Iterator[None]:
    """SIGTERM (``timeout``, SLURM, ``docker stop``, systemd) stops the command as Ctrl-C does:
    Python unwinds, so the temporary files and folders of unfinished work are removed. By default
    the process would die at once and leave them behind. Exit status 143, as a killed process."""
    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield
        return

    def stop(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_main(main: Callable[[], Any]) -> None:
    """Run a command's ``main`` (the CLI, a benchmark script): a ``TribertError`` is printed as one
    line ``error: ...`` and exits with 2; anything else is a bug and keeps its traceback. An int
    that ``main`` returns is the exit status."""
    try:
        status = main()
    except TribertError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    sys.exit(status if isinstance(status, int) else 0)
