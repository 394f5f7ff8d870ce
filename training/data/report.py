"""The curation report, built from the stats files datatrove writes for every finished task.

report/report.md       documents and characters in/out per step and per source, top removal reasons, tokens
report/report.json     the same numbers, for scripts
report/language_score.png   Tajik score of every document that reached language ID, per source
report/samples.md      removed documents (by reason) and kept ones, for a human to read
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from datatrove.utils.stats import MetricStats, MetricStatsDict, PipelineStats, Stats

from training.data.config import CurationConfig
from training.data.langid import SCORE_BINS
from training.data.stages import FINALISE_CHECKPOINTS, PREPARE_CHECKPOINTS, Layout, Stage
from training.data.tally import TALLY_PREFIX

CHECKPOINTS = PREPARE_CHECKPOINTS + FINALISE_CHECKPOINTS
# Checkpoints that are not the output of a step: the raw input, and the prepared files re-read by finalise.
_NOT_A_STEP = {"read", "prepared"}


@dataclass(frozen=True)
class Flow:
    docs: int = 0
    chars: int = 0


@dataclass(frozen=True)
class StepRow:
    step: str
    source: str
    docs_in: int
    docs_out: int
    chars_in: int
    chars_out: int


@dataclass(frozen=True)
class SourceTotals:
    source: str
    docs_in: int
    chars_in: int
    docs_out: int
    chars_out: int
    tokens_out: int


@dataclass
class CurationReport:
    steps: list[StepRow]
    sources: list[SourceTotals]
    removal_reasons: list[tuple[str, int]]
    language_score_bins: dict[str, list[int]]
    legacy_font_repaired: int
    pii_found: dict[str, int]
    tokenizer: str
    files: dict[str, str] = field(default_factory=dict)
    tajik_letters_restored: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def read_stage_stats(logging_dir: Path) -> dict[str, Stats]:
    """Every finished task's stats of one stage, merged per step (keyed by the step's name)."""
    merged: PipelineStats | None = None
    stats_dir = logging_dir / "stats"
    for stats_file in sorted(stats_dir.glob("*.json")) if stats_dir.is_dir() else []:
        task = PipelineStats.from_json(json.loads(stats_file.read_text(encoding="utf-8")))
        merged = task if merged is None else merged + task
    if merged is None:
        return {}
    for step in merged.stats:
        # Read back from JSON a counter is a bare number or a dict until two tasks' stats are added up.
        step.stats = MetricStatsDict(init={key: _metric(value) for key, value in step.stats.items()})
    return {step.name: step for step in merged.stats}


def _metric(value: object) -> MetricStats:
    return value if isinstance(value, MetricStats) else MetricStats.from_dict(value)


def _stat(stats: Stats, key: str) -> int:
    return int(stats.stats[key].total) if key in stats.stats else 0


def _tallies(stage_stats: dict[str, Stats], sources: list[str] | None = None) -> dict[str, dict[str, Flow]]:
    """checkpoint → source → documents and characters that passed it.

    A tally counts only the sources it saw; given ``sources``, every checkpoint of the stage lists each of them,
    with zeros for a source none of whose documents got that far.
    """
    flows: dict[str, dict[str, Flow]] = {}
    for name, stats in stage_stats.items():
        if TALLY_PREFIX not in name:
            continue
        checkpoint = name.split(TALLY_PREFIX, 1)[1]
        seen = sources if sources is not None else [k.split("/", 1)[1] for k in stats.stats if k.startswith("docs/")]
        flows[checkpoint] = {
            source: Flow(_stat(stats, f"docs/{source}"), _stat(stats, f"chars/{source}")) for source in seen
        }
    return flows


def checkpoint_flow(layout: Layout, stage: Stage) -> str:
    """One line for the progress display: documents after each checkpoint of a finished stage."""
    flows = _tallies(read_stage_stats(layout.logs(stage.slug)))
    parts = [
        f"{checkpoint} {sum(flow.docs for flow in flows[checkpoint].values()):,}"
        for checkpoint in CHECKPOINTS
        if checkpoint in flows
    ]
    return " → ".join(parts)


def _removal_reasons(all_stats: dict[str, dict[str, Stats]]) -> Counter[str]:
    reasons: Counter[str] = Counter()
    for stage, stage_stats in all_stats.items():
        for name, stats in stage_stats.items():
            keys = stats.stats
            if "exact-deduplication stage 3" in name:
                if stage == "finalise":
                    reasons["exact_duplicate"] += _stat(stats, "dropped")
            elif "MinHash stage 4" in name:
                reasons["near_duplicate"] += _stat(stats, "dropped")
            elif "Trafilatura" in name:
                reasons["no_main_text_in_html"] += _stat(stats, "dropped")
                reasons["html_extraction_failed"] += sum(
                    _stat(stats, key) for key in ("timeout", "clean_error", "broken_process")
                )
            elif "N-grams decontaminate" in name:
                for key in keys:
                    if key.startswith("contaminated_") and not key.startswith("contaminated_tg_"):
                        reasons[key] += _stat(stats, key)
            else:
                for key in keys:
                    if key.startswith("dropped_"):
                        reasons[key.removeprefix("dropped_")] += _stat(stats, key)
    return +reasons


def build_report(config: CurationConfig, stages: list[Stage], layout: Layout) -> CurationReport:
    all_stats = {stage.slug: read_stage_stats(layout.logs(stage.slug)) for stage in stages}
    source_names = [source.name for source in config.sources]
    flows: dict[str, dict[str, Flow]] = defaultdict(dict)
    for stage in stages:
        stage_sources = [stage.source] if stage.source else source_names
        for checkpoint, per_source in _tallies(all_stats[stage.slug], stage_sources).items():
            flows[checkpoint].update(per_source)

    rows: list[StepRow] = []
    for source in source_names:
        previous = Flow()
        # Only the steps this source went through: HTML extraction is for WARC sources, and a source may skip
        # the language or quality steps.
        for checkpoint in CHECKPOINTS:
            if source not in flows.get(checkpoint, {}):
                continue
            current = flows[checkpoint][source]
            if checkpoint not in _NOT_A_STEP:
                rows.append(StepRow(checkpoint, source, previous.docs, current.docs, previous.chars, current.chars))
            previous = current

    counters = _counters_of_steps(all_stats)
    totals = [
        SourceTotals(
            source,
            flows["read"].get(source, Flow()).docs,
            flows["read"].get(source, Flow()).chars,
            flows["output"].get(source, Flow()).docs,
            flows["output"].get(source, Flow()).chars,
            counters["Tokens"][f"tokens/{source}"],
        )
        for source in source_names
    ]
    bins: dict[str, list[int]] = {}
    for source in source_names:
        counts = [counters["Tajik language ID"][f"score_bin/{source}/{b:02d}"] for b in range(SCORE_BINS)]
        if any(counts):
            bins[source] = counts
    pii = counters["Tajik PII"]
    return CurationReport(
        steps=rows,
        sources=totals,
        removal_reasons=_removal_reasons(all_stats).most_common(),
        language_score_bins=bins,
        legacy_font_repaired=counters["Tajik normalisation"]["legacy_font_repaired"],
        pii_found={key.removeprefix("pii_"): count for key, count in sorted(pii.items()) if key.startswith("pii_")},
        tokenizer=config.report.tokenizer or "whitespace words",
        tajik_letters_restored=counters["Tajik letter restoration"]["restored"],
    )


_COUNTED_STEPS = ("Tokens", "Tajik language ID", "Tajik normalisation", "Tajik PII", "Tajik letter restoration")


def _counters_of_steps(all_stats: dict[str, dict[str, Stats]]) -> dict[str, Counter[str]]:
    """Our own steps' counters, added up over every stage they run in (one per source for the Tajik ones)."""
    counters: dict[str, Counter[str]] = {step: Counter() for step in _COUNTED_STEPS}
    for stage_stats in all_stats.values():
        for name, stats in stage_stats.items():
            for step in _COUNTED_STEPS:
                if step in name:
                    counters[step].update({key: _stat(stats, key) for key in stats.stats})
    return counters


def plot_language_scores(report: CurationReport, threshold: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    width = 1.0 / SCORE_BINS
    lefts = [b * width for b in range(SCORE_BINS)]
    figure, axes = plt.subplots(figsize=(8, 4.5))
    bottom = [0] * SCORE_BINS
    for source, counts in report.language_score_bins.items():
        axes.bar(lefts, counts, width=width, bottom=bottom, align="edge", label=source, edgecolor="white")
        bottom = [a + b for a, b in zip(bottom, counts, strict=True)]
    axes.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:g}")
    axes.set_xlabel("Tajik language score")
    axes.set_ylabel("documents")
    axes.set_title("Language ID: documents per score (kept at or right of the line)")
    axes.set_xlim(0, 1)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def _fmt(n: int) -> str:
    return f"{n:,}"


def _markdown(report: CurationReport, config: CurationConfig) -> str:
    lines = ["# Curation report", ""]
    lines += [
        "## Sources",
        "",
        "| source | docs in | chars in | docs out | chars out | tokens out |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for s in report.sources:
        lines.append(
            f"| {s.source} | {_fmt(s.docs_in)} | {_fmt(s.chars_in)} | {_fmt(s.docs_out)} | {_fmt(s.chars_out)} | "
            f"{_fmt(s.tokens_out)} |"
        )
    total = SourceTotals(
        "**all**",
        *(
            sum(getattr(s, f) for s in report.sources)
            for f in ("docs_in", "chars_in", "docs_out", "chars_out", "tokens_out")
        ),
    )
    lines.append(
        f"| {total.source} | {_fmt(total.docs_in)} | {_fmt(total.chars_in)} | {_fmt(total.docs_out)} | "
        f"{_fmt(total.chars_out)} | {_fmt(total.tokens_out)} |"
    )
    lines += ["", f"Tokens counted with: {report.tokenizer}.", ""]
    lines += [
        "## Steps",
        "",
        "| step | source | docs in | docs out | removed | chars in | chars out |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in report.steps:
        lines.append(
            f"| {row.step} | {row.source} | {_fmt(row.docs_in)} | {_fmt(row.docs_out)} | "
            f"{_fmt(row.docs_in - row.docs_out)} | {_fmt(row.chars_in)} | {_fmt(row.chars_out)} |"
        )
    lines += ["", "## Top removal reasons", "", "| reason | documents |", "|---|---:|"]
    lines += [f"| {reason} | {_fmt(count)} |" for reason, count in report.removal_reasons[:20]]
    lines += [
        "",
        "## Other findings",
        "",
        f"- Documents repaired from a legacy Tajik font: {_fmt(report.legacy_font_repaired)}",
        f"- Documents with Tajik letters restored (typed on a Russian keyboard): {_fmt(report.tajik_letters_restored)}"
        + ("" if config.normalise.restore_tajik_letters else " (step off)"),
        "- PII replaced: "
        + (", ".join(f"{kind} {_fmt(count)}" for kind, count in sorted(report.pii_found.items())) or "none"),
        "",
        f"![Tajik language score](language_score.png) (threshold {config.language.threshold:g})",
        "",
        "Samples of removed and kept documents: [samples.md](samples.md).",
        "",
    ]
    return "\n".join(lines)


def _first_documents(folder: Path, limit: int) -> list[dict[str, Any]]:
    """The first ``limit`` documents of the JSONL.gz or Parquet files under ``folder``."""
    import gzip

    documents: list[dict[str, Any]] = []
    for path in sorted(folder.rglob("*")) if folder.is_dir() else []:
        if len(documents) >= limit:
            break
        if path.name.endswith(".jsonl.gz"):
            with gzip.open(path, "rt", encoding="utf-8") as stream:
                for line in stream:
                    documents.append(json.loads(line))
                    if len(documents) >= limit:
                        break
        elif path.suffix == ".parquet":
            import pyarrow.parquet as pq

            documents += pq.read_table(path).slice(0, limit - len(documents)).to_pylist()
    return documents


def _samples_markdown(config: CurationConfig, layout: Layout) -> str:
    options = config.report
    lines = ["# Samples", "", "First documents of each kind, cut to a few hundred characters.", ""]

    def show(document: dict[str, Any]) -> None:
        metadata = document.get("metadata") or {}
        if isinstance(metadata, str):
            metadata = json.loads(metadata)
        source = document.get("source") or metadata.get("source", "")
        where = document.get("url") or metadata.get("url") or document.get("path") or metadata.get("file_path", "")
        text = str(document.get("text", ""))
        cut = text[: options.sample_chars] + (" …" if len(text) > options.sample_chars else "")
        lines.extend([f"**{source}** {where}", "", "```text", cut, "```", ""])

    for step_dir in sorted(layout.removed.iterdir()) if layout.removed.is_dir() else []:
        by_reason: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for document in _first_documents(step_dir, 200):
            reason = (document.get("metadata") or {}).get("filter_reason", step_dir.name)
            if len(by_reason[reason]) < options.samples_per_reason:
                by_reason[reason].append(document)
        for reason, documents in sorted(by_reason.items()):
            lines += [f"## Removed by {step_dir.name}: {reason}", ""]
            for document in documents:
                show(document)
    lines += ["## Kept", ""]
    for document in _first_documents(layout.shards, options.samples_per_reason * 2):
        show(document)
    return "\n".join(lines)


def write_report(config: CurationConfig, stages: list[Stage], layout: Layout) -> CurationReport:
    layout.report.mkdir(parents=True, exist_ok=True)
    report = build_report(config, stages, layout)
    files = {
        "markdown": layout.report / "report.md",
        "json": layout.report / "report.json",
        "language_scores": layout.report / "language_score.png",
        "samples": layout.report / "samples.md",
    }
    report.files = {kind: str(path) for kind, path in files.items()}
    plot_language_scores(report, config.language.threshold, files["language_scores"])
    files["samples"].write_text(_samples_markdown(config, layout), encoding="utf-8")
    files["markdown"].write_text(_markdown(report, config), encoding="utf-8")
    files["json"].write_text(json.dumps(report.to_json(), ensure_ascii=False, indent=2), encoding="utf-8")
    return report
