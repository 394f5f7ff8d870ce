"""A CSV log of everything the Trainer logs, readable without TensorBoard or any other service."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

CSV_COLUMNS = ("step", "epoch", "name", "value")


class CsvLogCallback(TrainerCallback):
    """Appends one ``step,epoch,name,value`` row per logged number to ``path``.

    A long format, because the logged names differ from row to row (training loss and learning rate every few
    steps, evaluation figures less often); appending keeps the rows of a run resumed after a crash.
    Only the main process writes.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if not state.is_world_process_zero or not logs:
            return
        rows = [
            (state.global_step, round(state.epoch or 0.0, 4), name, value)
            for name, value in logs.items()
            if name != "epoch" and isinstance(value, int | float) and not isinstance(value, bool)
        ]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new_file = not self.path.exists()
        with self.path.open("a", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            if new_file:
                writer.writerow(CSV_COLUMNS)
            writer.writerows(rows)


def read_csv_log(path: Path) -> list[dict[str, Any]]:
    """The rows of a CSV log as dicts with numeric step and value."""
    with path.open(encoding="utf-8", newline="") as handle:
        return [
            {"step": int(row["step"]), "epoch": float(row["epoch"]), "name": row["name"], "value": float(row["value"])}
            for row in csv.DictReader(handle)
        ]
