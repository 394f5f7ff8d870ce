"""``soro eval compare``: several runs side by side, as a Markdown table and a bar chart.

The first run is the baseline. Every score gets a 95 % bootstrap interval; every difference to the baseline
gets one too (paired when both runs scored the same items, which is the usual case), and a difference whose
interval contains zero is marked ``≈``: within noise, not evidence that one model is better.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from training.eval.results import Metric, TaskResult, format_score, read_run
from training.eval.stats import Interval, bootstrap_interval, difference_interval, within_noise

WITHIN_NOISE = "≈"
TABLE_NAME = "compare.md"
CHART_NAME = "compare.png"


@dataclass(frozen=True)
class Run:
    label: str
    path: Path
    results: dict[str, TaskResult]


@dataclass(frozen=True)
class Cell:
    value: float
    interval: Interval
    difference: float | None = None  # to the baseline; None for the baseline itself
    difference_interval: Interval | None = None

    @property
    def tested(self) -> bool:
        """Whether the difference has an interval over items at all (two or more items in both runs)."""
        return self.difference_interval is not None and not any(map(math.isnan, self.difference_interval))

    @property
    def within_noise(self) -> bool:
        return self.tested and within_noise(self.difference_interval or (math.nan, math.nan))


def load_runs(paths: list[Path]) -> list[Run]:
    runs: list[Run] = []
    labels: set[str] = set()
    for path in paths:
        description, results = read_run(path)
        label = description.name or path.name
        if label in labels:
            label = f"{label} ({path.name})"
        labels.add(label)
        runs.append(Run(label, path, {result.task: result for result in results}))
    return runs


def _rows(runs: list[Run]) -> list[tuple[str, str]]:
    """(task, metric) pairs in the order they first appear across the runs."""
    rows: list[tuple[str, str]] = []
    for run in runs:
        for result in run.results.values():
            for metric in result.metrics:
                if (result.task, metric.name) not in rows:
                    rows.append((result.task, metric.name))
    return rows


def _metric(run: Run, task: str, name: str) -> tuple[TaskResult, Metric] | None:
    result = run.results.get(task)
    if result is None:
        return None
    try:
        return result, result.metric(name)
    except KeyError:
        return None


def compare_cells(runs: list[Run], *, resamples: int = 1000, seed: int = 0) -> dict[tuple[str, str], list[Cell | None]]:
    cells: dict[tuple[str, str], list[Cell | None]] = {}
    for task, name in _rows(runs):
        base = _metric(runs[0], task, name)
        row: list[Cell | None] = []
        for index, run in enumerate(runs):
            found = _metric(run, task, name)
            if found is None:
                row.append(None)
                continue
            result, metric = found
            interval = bootstrap_interval(metric.aggregate, metric.array, resamples=resamples, seed=seed)
            if index == 0 or base is None:
                row.append(Cell(metric.value, interval))
                continue
            base_result, base_metric = base
            paired = base_result.item_ids == result.item_ids
            diff = difference_interval(
                metric.aggregate, base_metric.array, metric.array, paired=paired, resamples=resamples, seed=seed
            )
            row.append(Cell(metric.value, interval, metric.value - base_metric.value, diff))
        cells[(task, name)] = row
    return cells


def _signed(value: float) -> str:
    text = format_score(abs(value))
    return f"+{text}" if value >= 0 else f"−{text}"


def markdown(runs: list[Run], cells: dict[tuple[str, str], list[Cell | None]]) -> str:
    header = "| task | metric | " + " | ".join(run.label for run in runs) + " |"
    lines = [
        f"# Comparison (baseline: {runs[0].label})",
        "",
        header,
        "|---|---|" + "---:|" * len(runs),
    ]
    for (task, name), row in cells.items():
        metric = next(found[1] for run in runs if (found := _metric(run, task, name)) is not None)
        arrow = "↑" if metric.higher_is_better else "↓"
        texts = []
        for cell in row:
            if cell is None:
                texts.append("–")
                continue
            low, high = cell.interval
            text = f"{format_score(cell.value)} [{format_score(low)}, {format_score(high)}]"
            if cell.difference is not None:
                marker = (" " + WITHIN_NOISE if cell.within_noise else "") if cell.tested else ", untested"
                text += f" ({_signed(cell.difference)}{marker})"
            texts.append(text)
        lines.append(f"| {task} | {name} {arrow} | " + " | ".join(texts) + " |")
    lines += [
        "",
        "Scores with their 95 % bootstrap interval; in brackets the difference to the baseline. "
        f"{WITHIN_NOISE}: that difference is within noise (its 95 % bootstrap interval contains zero); "
        "untested: too few items for an interval, so no claim either way. Latency is only measured on served "
        "models, one streamed request per item.",
    ]
    return "\n".join(lines) + "\n"


def bar_chart(runs: list[Run], cells: dict[tuple[str, str], list[Cell | None]], path: Path) -> None:
    """One panel per task (its headline metric): a bar per run with its interval; ``≈`` over bars within noise."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    headlines = []
    for task in dict.fromkeys(task for task, _ in cells):
        result = next(run.results[task] for run in runs if task in run.results)
        headlines.append((task, result.headline.name, result.headline.higher_is_better, result.chance))
    columns = min(3, len(headlines))
    rows = math.ceil(len(headlines) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.4 * rows), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for axis, (task, name, higher_is_better, chance) in zip(axes.flat, headlines, strict=False):
        row = cells[(task, name)]
        for i, cell in enumerate(row):
            if cell is None:
                continue
            low, high = cell.interval
            error = (
                [[max(cell.value - low, 0.0)], [max(high - cell.value, 0.0)]]
                if not (math.isnan(low) or math.isnan(high))
                else None
            )
            axis.bar(i, cell.value, color=colours[i % len(colours)], yerr=error, capsize=4)
            if cell.within_noise:
                top = high if not math.isnan(high) else cell.value
                axis.annotate(WITHIN_NOISE, (i, top), ha="center", va="bottom", fontsize=14)
        if chance is not None and name == "accuracy":
            axis.axhline(chance, color="grey", linestyle="--", linewidth=1, label="chance")
            axis.legend(loc="lower right", fontsize=7)
        axis.set_title(f"{task}\n{name} ({'higher' if higher_is_better else 'lower'} is better)", fontsize=9)
        axis.set_xticks(range(len(runs)), [run.label for run in runs], rotation=30, ha="right", fontsize=8)
        axis.margins(y=0.15)
    for axis in list(axes.flat)[len(headlines) :]:
        axis.set_visible(False)
    figure.suptitle(f"{WITHIN_NOISE}: within noise of {runs[0].label} (95 % bootstrap)", fontsize=9)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)


def compare_runs(paths: list[Path], out_dir: Path, *, resamples: int = 1000, seed: int = 0) -> tuple[Path, Path]:
    """Write ``compare.md`` and ``compare.png`` for the runs at ``paths`` (the first is the baseline)."""
    if not paths:
        raise ValueError("give at least one run folder")
    runs = load_runs(paths)
    cells = compare_cells(runs, resamples=resamples, seed=seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    table = out_dir / TABLE_NAME
    table.write_text(markdown(runs, cells), encoding="utf-8")
    chart = out_dir / CHART_NAME
    bar_chart(runs, cells, chart)
    return table, chart
