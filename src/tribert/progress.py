"""Progress bars (rich's), drawn where someone is watching."""

from __future__ import annotations

from typing import Iterable, TypeVar

T = TypeVar("T")


def track(items: Iterable[T], description: str, *, enabled: bool = True, transient: bool = False,
          total: float | None = None) -> Iterable[T]:
    """``items``, with a progress bar while they are iterated. A transient bar (erased when done) is
    drawn on a terminal only: in a log file or a pipe it would leave nothing but a blank line."""
    from rich.console import Console
    from rich.progress import track as rich_track

    if not enabled or (transient and not Console().is_terminal):
        return items
    return rich_track(items, description=description, total=total, transient=transient)
