"""The ``tribert`` command line. Each command is a thin wrapper over the Python API.

Every ``TribertError`` (a bad file, config or argument) is printed as one line and exits with
code 2; a command that partly failed (some clips did not prepare) exits with code 1.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from tribert.errors import TribertError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="TriBERT: tri-modal (vision, pose, audio) visual sound separation.")


def fail(err: Exception, code: int = 2) -> None:
    typer.echo(f"error: {err}", err=True)
    raise typer.Exit(code)


@app.command()
def synth(
    out: Path = typer.Option(..., "--out", help="Folder to write the SynthMUSIC clips into."),
    clips: int = typer.Option(100, "--clips", help="Number of clips to generate."),
    seed: int = typer.Option(0, "--seed", help="Random seed; the same seed gives the same data."),
    soundfont: Optional[Path] = typer.Option(None, "--soundfont", help="A .sf2 bank (default: TimGM6mb from pretty_midi)."),
    duration: float = typer.Option(6.0, "--duration", help="Clip length in seconds."),
    workers: int = typer.Option(0, "--workers", help="Worker processes (0: one per CPU core)."),
) -> None:
    """Generate SynthMUSIC: drawn performers, note-driven motion, soundfont audio, real MP4s."""
    raise NotImplementedError  # owned by the SynthMUSIC work


@app.command()
def prepare(
    inputs: List[Path] = typer.Argument(..., help="Video files, folders of videos, or MUSIC JSON / Sound-of-Pixels CSV index files."),
    out: Path = typer.Option(..., "--out", help="Folder for the prepared clip folders."),
    video_root: Optional[Path] = typer.Option(None, "--video-root", help="Where the ids of JSON/CSV index files are found (default: the index file's folder)."),
    workers: int = typer.Option(0, "--workers", help="Worker processes (0: one per CPU core)."),
    no_pose: bool = typer.Option(False, "--no-pose", help="Skip pose detection (no MediaPipe needed)."),
    fps: float = typer.Option(8.0, "--fps", help="Stored frame rate (and pose rate)."),
    frame_size: int = typer.Option(224, "--frame-size", help="Shorter side of the stored frames in pixels (aspect kept); 0 keeps the video's size."),
) -> None:
    """Turn videos into prepared clip folders (frames, audio, pose). Finished clips are skipped.

    Exit code 0: all inputs prepared (or already done); 1: some failed; 2: bad arguments.
    """
    from rich.console import Console
    from rich.table import Table

    from tribert.data.prepare import prepare as run_prepare

    try:
        report = run_prepare(inputs, out, video_root=video_root, fps=fps, frame_size=frame_size or None,
                             pose="none" if no_pose else "mediapipe", workers=workers)
    except TribertError as err:
        fail(err)
    table = Table(title=f"tribert prepare -> {out}")
    for col in ("prepared", "skipped (already done)", "failed"):
        table.add_column(col, justify="right")
    table.add_row(str(len(report.prepared)), str(len(report.skipped)), str(len(report.failed)))
    Console().print(table)
    for r in report.failed:
        typer.echo(f"error: {r.source}: {r.reason}", err=True)
    if report.failed:
        raise typer.Exit(1)


def main() -> None:  # pragma: no cover - console entry point
    try:
        app()
    except TribertError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":  # pragma: no cover
    main()
