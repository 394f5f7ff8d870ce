"""``soro_run.json``: what a training run started from, what it read and how far it went.

Written next to the weights a run saves; export reads it to write the model card. A run that starts from the
output of an earlier one (SFT on a CPT model) nests that run's summary under ``parent``, so the card can tell
the whole story from the published checkpoint.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SUMMARY_FILE = "soro_run.json"


@dataclass
class RunSummary:
    kind: str  # "cpt" or "sft"
    base_model: str
    data: dict[str, Any]
    steps: int
    metrics: dict[str, float] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    parent: RunSummary | None = None

    def write(self, folder: Path) -> Path:
        path = folder / SUMMARY_FILE
        path.write_text(json.dumps(asdict(self), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RunSummary:
        parent = raw.get("parent")
        return cls(
            kind=raw["kind"],
            base_model=raw["base_model"],
            data=raw.get("data", {}),
            steps=int(raw.get("steps", 0)),
            metrics=raw.get("metrics", {}),
            config=raw.get("config", {}),
            parent=cls.from_dict(parent) if parent else None,
        )

    def lineage(self) -> list[RunSummary]:
        """This run and the runs it continued, oldest first."""
        runs = [self]
        while runs[0].parent is not None:
            runs.insert(0, runs[0].parent)
        return runs

    def origin(self) -> str:
        """The checkpoint the oldest run started from: the published base model."""
        return self.lineage()[0].base_model


def read_summary(folder: Path) -> RunSummary | None:
    path = folder / SUMMARY_FILE
    if not path.is_file():
        return None
    return RunSummary.from_dict(json.loads(path.read_text(encoding="utf-8")))
