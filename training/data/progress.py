"""The rich progress display of ``soro data build``: one row per stage with its finished tasks, and a line
per finished stage with the documents left after each of its steps.

datatrove's own log lines go to <work>/logs/console.log meanwhile (and each task's to its stage's logs/ folder),
so they do not tear the display apart; ``--verbose`` shows them instead.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from training.data.executors import completed_tasks
from training.data.report import checkpoint_flow
from training.data.stages import Layout, Stage

_POLL_SECONDS = 0.5


class StageProgress:
    def __init__(self, console: Console, stages: list[Stage], layout: Layout) -> None:
        self.layout = layout
        self.progress = Progress(
            TextColumn("[bold]{task.description:<34}"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TextColumn("tasks"),
            TimeElapsedColumn(),
            console=console,
        )
        self.rows: dict[str, TaskID] = {
            stage.slug: self.progress.add_task(
                stage.title, total=stage.tasks, completed=completed_tasks(layout, stage), start=False
            )
            for stage in stages
        }

    def __enter__(self) -> StageProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.progress.stop()

    @contextlib.contextmanager
    def running(self, stage: Stage) -> Iterator[None]:
        row = self.rows[stage.slug]
        self.progress.start_task(row)
        stop = threading.Event()

        def poll() -> None:
            while not stop.wait(_POLL_SECONDS):
                self.progress.update(row, completed=completed_tasks(self.layout, stage))

        poller = threading.Thread(target=poll, name=f"progress-{stage.slug}", daemon=True)
        poller.start()
        try:
            yield
        finally:
            stop.set()
            poller.join()
            self.progress.update(row, completed=completed_tasks(self.layout, stage))
            self.progress.stop_task(row)
            if flow := checkpoint_flow(self.layout, stage):
                self.progress.console.print(f"[green]✓[/green] {stage.title}: documents after {flow}")


@contextlib.contextmanager
def output_to(log: Path) -> Iterator[Console]:
    """Send everything written to stdout/stderr (by datatrove, its worker processes, trafilatura …) to ``log``;
    yield a console that still writes to the terminal."""
    log.parent.mkdir(parents=True, exist_ok=True)
    try:
        terminal_fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        # No file descriptor to redirect (a notebook, an embedding host): leave the output where it goes.
        yield Console(stderr=True)
        return
    sys.stdout.flush()
    sys.stderr.flush()
    terminal = os.fdopen(os.dup(terminal_fd), "w", encoding="utf-8", closefd=True)
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    try:
        with log.open("ab") as sink:
            for fd in saved:
                os.dup2(sink.fileno(), fd)
            try:
                yield Console(file=terminal, stderr=True)
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                for fd, copy in saved.items():
                    os.dup2(copy, fd)
    finally:
        for copy in saved.values():
            os.close(copy)
        terminal.close()
