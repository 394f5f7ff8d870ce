"""What a run writes: one JSON file per task (scores, per-item statistics, per-item outputs), a Markdown table,
and ``run.json`` describing the model and the config. ``soro eval compare`` reads the same files back.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from training.eval.stats import Aggregate, Samples, aggregate, bootstrap_interval

RUN_FILE = "run.json"
TABLE_FILE = "results.md"


@dataclass(frozen=True)
class Metric:
    """One score of a task, with the per-item statistics it is computed from (aligned to the task's item ids)."""

    name: str
    aggregate: Aggregate
    higher_is_better: bool
    samples: list[list[float]]

    @property
    def array(self) -> Samples:
        width = len(self.samples[0]) if self.samples else 1
        return np.asarray(self.samples, dtype=np.float64).reshape(len(self.samples), width)

    @property
    def value(self) -> float:
        return aggregate(self.aggregate, self.array)


@dataclass(frozen=True)
class TaskResult:
    task: str
    kind: str  # the task type of the config
    scoring: str  # "loglikelihood" or "generation"
    item_ids: list[str]
    metrics: list[Metric]  # the first is the headline score
    chance: float | None = None  # the expected headline score of a random or constant answerer
    items: list[dict[str, Any]] = field(default_factory=list)  # per-item outputs, for reading
    seconds: float = 0.0

    @property
    def headline(self) -> Metric:
        return self.metrics[0]

    def metric(self, name: str) -> Metric:
        for metric in self.metrics:
            if metric.name == name:
                return metric
        raise KeyError(f"{self.task} has no metric {name!r}")

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["n"] = len(self.item_ids)
        data["scores"] = {
            metric.name: {"value": _finite(metric.value), "ci95": list(_interval(metric))} for metric in self.metrics
        }
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TaskResult:
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        known["metrics"] = [Metric(**metric) for metric in data["metrics"]]
        return cls(**known)


def _finite(value: float) -> float | None:
    return None if math.isnan(value) else value


def _interval(metric: Metric) -> tuple[float | None, float | None]:
    low, high = bootstrap_interval(metric.aggregate, metric.array)
    return (_finite(low), _finite(high))


def write_task_result(out_dir: Path, result: TaskResult) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{result.task}.json"
    path.write_text(json.dumps(result.to_json(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return path


def read_run(run_dir: Path) -> tuple[dict[str, Any], list[TaskResult]]:
    """A run folder's description and its task results, in the order the run wrote them."""
    run_file = run_dir / RUN_FILE
    if not run_file.is_file():
        raise FileNotFoundError(f"{run_dir} is not an evaluation run (no {RUN_FILE})")
    run = json.loads(run_file.read_text(encoding="utf-8"))
    results = [
        TaskResult.from_json(json.loads((run_dir / f"{task}.json").read_text(encoding="utf-8")))
        for task in run["tasks"]
        if (run_dir / f"{task}.json").is_file()
    ]
    return run, results


def format_score(value: float) -> str:
    if math.isnan(value):
        return "–"
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.3f}"


def format_interval(interval: tuple[float, float]) -> str:
    low, high = interval
    return "–" if math.isnan(low) or math.isnan(high) else f"{format_score(low)} – {format_score(high)}"


def markdown_table(name: str, results: list[TaskResult]) -> str:
    """One row per task and metric: score, 95 % bootstrap interval, items, chance level."""
    lines = [
        f"# {name}",
        "",
        "| task | metric | score | 95 % CI | n | chance | scoring |",
        "|---|---|---:|---|---:|---:|---|",
    ]
    for result in results:
        for metric in result.metrics:
            interval = format_interval(bootstrap_interval(metric.aggregate, metric.array))
            chance = format_score(result.chance) if result.chance is not None and metric is result.headline else ""
            lines.append(
                f"| {result.task} | {metric.name} | {format_score(metric.value)} | "
                f"{interval} | {len(result.item_ids)} | {chance} | {result.scoring} |"
            )
    groups = [result for result in results if any(item.get("group") for item in result.items)]
    for result in groups:
        lines += ["", f"## {result.task} by group", "", "| group | accuracy | n |", "|---|---:|---:|"]
        by_group: dict[str, list[float]] = {}
        for item, sample in zip(result.items, result.headline.samples, strict=True):
            by_group.setdefault(str(item.get("group")), []).append(sample[0])
        for group, scores in sorted(by_group.items()):
            lines.append(f"| {group} | {format_score(sum(scores) / len(scores))} | {len(scores)} |")
    return "\n".join(lines) + "\n"
