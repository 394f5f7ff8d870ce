"""What a run writes: one JSON file per task (scores, per-item statistics, per-item outputs), a Markdown table,
``run.json`` describing the backend and the config, and ``results.json``: the run's scores, one entry per task
and metric (value, 95 % interval, items, model, model hash, date). ``results.json`` is the one file that
``soro eval compare``, the model card and ``soro train export --eval-results`` read, checked on load.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from training.eval.stats import Aggregate, Samples, aggregate, bootstrap_interval

RUN_FILE = "run.json"
TABLE_FILE = "results.md"
RESULTS_FILE = "results.json"
RESULTS_FORMAT = "soro-eval-results/1"


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


def read_run(run_dir: Path) -> tuple[EvalResults, list[TaskResult]]:
    """A run folder's checked ``results.json`` and the per-item task results it lists, in the run's order."""
    if not (run_dir / RESULTS_FILE).is_file():
        raise FileNotFoundError(f"{run_dir} is not an evaluation run (no {RESULTS_FILE})")
    results = read_results(run_dir)
    tasks = list(dict.fromkeys(score.task for score in results.scores))
    missing = [task for task in tasks if not (run_dir / f"{task}.json").is_file()]
    if missing:
        raise ResultsError(f"{run_dir}: {RESULTS_FILE} lists {', '.join(missing)} but the task file is missing")
    return results, [
        TaskResult.from_json(json.loads((run_dir / f"{task}.json").read_text(encoding="utf-8"))) for task in tasks
    ]


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


class ResultsError(ValueError):
    """A file given as evaluation results that is not a ``results.json`` of ``soro eval run``."""


@dataclass(frozen=True)
class Score:
    task: str
    metric: str
    value: float | None  # None when the score is undefined (e.g. no items)
    ci95: tuple[float, float] | None  # None where no interval over items exists
    n: int
    higher_is_better: bool


@dataclass(frozen=True)
class EvalResults:
    """The scores of one evaluation run of one model."""

    name: str
    model: str  # the model folder, or the served model name at its endpoint
    model_hash: str | None  # sha256 over the weight files of a local model folder; None for an endpoint
    date: str  # when the run finished (ISO 8601, UTC)
    backend: str
    scores: list[Score]

    def to_json(self) -> dict[str, Any]:
        return {"format": RESULTS_FORMAT, **asdict(self)}

    def write(self, out_dir: Path) -> Path:
        path = out_dir / RESULTS_FILE
        path.write_text(json.dumps(self.to_json(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        return path


def scores_of(results: list[TaskResult]) -> list[Score]:
    scores = []
    for result in results:
        for metric in result.metrics:
            low, high = _interval(metric)
            scores.append(
                Score(
                    task=result.task,
                    metric=metric.name,
                    value=_finite(metric.value),
                    ci95=None if low is None or high is None else (low, high),
                    n=len(result.item_ids),
                    higher_is_better=metric.higher_is_better,
                )
            )
    return scores


def model_hash(folder: Path) -> str | None:
    """sha256 over a model folder's weight files (names and bytes), so a card's scores name the exact weights."""
    files = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("*.bin"))
    if not files:
        return None
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode())
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


_SCORE_FIELDS: dict[str, tuple[type, ...]] = {
    "task": (str,),
    "metric": (str,),
    "value": (int, float, type(None)),
    "ci95": (list, type(None)),
    "n": (int,),
    "higher_is_better": (bool,),
}
_RESULTS_FIELDS: dict[str, tuple[type, ...]] = {
    "name": (str,),
    "model": (str,),
    "model_hash": (str, type(None)),
    "date": (str,),
    "backend": (str,),
    "scores": (list,),
}


def _checked(raw: object, fields: dict[str, tuple[type, ...]], where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ResultsError(f"{where}: expected an object")
    for name, types_ in fields.items():
        if name not in raw:
            raise ResultsError(f"{where}: missing {name!r}")
        value = raw[name]
        if not isinstance(value, types_) or (isinstance(value, bool) and bool not in types_):
            raise ResultsError(f"{where}.{name}: unexpected value {value!r}")
    return raw


def _score(raw: object, where: str) -> Score:
    data = _checked(raw, _SCORE_FIELDS, where)
    interval = data["ci95"]
    if interval is not None and (
        len(interval) != 2 or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in interval)
    ):
        raise ResultsError(f"{where}.ci95: expected [low, high] or null, got {interval!r}")
    return Score(
        task=data["task"],
        metric=data["metric"],
        value=None if data["value"] is None else float(data["value"]),
        ci95=None if interval is None else (float(interval[0]), float(interval[1])),
        n=data["n"],
        higher_is_better=data["higher_is_better"],
    )


def read_results(path: Path) -> EvalResults:
    """A ``results.json`` (or the run folder holding it), checked: any other JSON is refused, saying why."""
    if path.is_dir():
        path = path / RESULTS_FILE
    if not path.is_file():
        raise ResultsError(f"{path}: no such file (soro eval run writes {RESULTS_FILE} in its run folder)")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{path}: not JSON: {exc}") from exc
    if not isinstance(raw, dict) or raw.get("format") != RESULTS_FORMAT:
        raise ResultsError(
            f"{path}: not an evaluation results file (expected the {RESULTS_FILE} that soro eval run writes, "
            f'with "format": "{RESULTS_FORMAT}")'
        )
    data = _checked(raw, _RESULTS_FIELDS, str(path))
    return EvalResults(
        name=data["name"],
        model=data["model"],
        model_hash=data["model_hash"],
        date=data["date"],
        backend=data["backend"],
        scores=[_score(item, f"{path}: scores[{i}]") for i, item in enumerate(data["scores"])],
    )
