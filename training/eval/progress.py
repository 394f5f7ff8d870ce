"""A progress bar per task of ``soro eval run``, advanced by the backends as their requests finish.

The tasks know their items and the backends know when each request is done, so the runner opens a bar for
the task and the backends report to whatever bar is current (a context variable: no argument threads through
the tasks, and a backend used outside a run reports to nothing).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

_current: contextvars.ContextVar[tuple[Progress, TaskID] | None] = contextvars.ContextVar(
    "soro_eval_progress", default=None
)


@contextlib.contextmanager
def task_bar(progress: Progress | None, name: str) -> Iterator[None]:
    """Make a bar named ``name`` the one the backends advance while the block runs."""
    if progress is None:
        yield
        return
    bar = progress.add_task(name, total=0)
    token = _current.set((progress, bar))
    try:
        yield
    finally:
        _current.reset(token)


def expect(requests: int) -> None:
    """``requests`` more requests are coming for the current task."""
    current = _current.get()
    if current is not None:
        progress, bar = current
        task = progress.tasks[[t.id for t in progress.tasks].index(bar)]
        progress.update(bar, total=(task.total or 0) + requests)


def advance(requests: int = 1) -> None:
    current = _current.get()
    if current is not None:
        progress, bar = current
        progress.advance(bar, requests)


def new_progress() -> Progress:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("requests"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
    )
