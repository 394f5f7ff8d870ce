"""The model card (README.md) of an exported Soro model: where it comes from, what it learnt, how it scores."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from training.common.run_summary import RunSummary

_DATA_FIELDS = (
    ("train_files", "training data"),
    ("replay_files", "replay data"),
    ("validation_files", "validation data"),
    ("train_tokens", "training tokens"),
    ("replay_share", "replay share of tokens"),
    ("train_documents", "training documents"),
    ("read", "examples read"),
    ("kept", "examples kept"),
    ("train", "training examples"),
    ("validation", "validation examples"),
    ("method", "method"),
)


def flatten_metrics(results: Any, prefix: str = "") -> Iterator[tuple[str, float]]:
    """Every number in a results JSON, keyed by its path (``tasks.belebele.acc``), whatever the layout."""
    if isinstance(results, dict):
        for key, value in results.items():
            yield from flatten_metrics(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(results, list):
        for index, value in enumerate(results):
            yield from flatten_metrics(value, f"{prefix}[{index}]")
    elif isinstance(results, int | float) and not isinstance(results, bool):
        yield prefix, float(results)


def _format(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return ", ".join(f"`{item}`" for item in value) or "—"
    return str(value)


def render_model_card(
    name: str,
    summary: RunSummary | None,
    *,
    base_model: str,
    eval_results: dict[str, Any] | None = None,
    eval_source: str = "",
    merged_adapter: bool = False,
) -> str:
    """Markdown with Hugging Face front matter; every section present only when there is something to say."""
    lines = [
        "---",
        f"base_model: {json.dumps(base_model)}",
        "language:",
        "- tg",
        "library_name: transformers",
        "pipeline_tag: text-generation",
        "tags:",
        "- soro",
        "- gemma3",
        "---",
        "",
        f"# {name}",
        "",
        "Soro: Gemma 3 adapted to Tajik (тоҷикӣ). A text-only causal language model with Gemma 3's chat "
        "template; generation stops at `<end_of_turn>` or `<eos>`. Serve it as it is:",
        "",
        "```bash",
        f"vllm serve {name} --served-model-name soro",
        "```",
        "",
        "## Base model",
        "",
        f"`{base_model}`",
        "",
    ]
    if summary is not None:
        lines += ["## Training", ""]
        for step, run in enumerate(summary.lineage(), start=1):
            title = {"cpt": "continual pretraining", "sft": "instruction tuning"}.get(run.kind, run.kind)
            lines += [f"### {step}. {title} from `{run.base_model}`", "", f"- steps: {run.steps}"]
            lines += [f"- {label}: {_format(run.data[key])}" for key, label in _DATA_FIELDS if key in run.data]
            held_out = {k: v for k, v in run.metrics.items() if k in ("eval_loss", "eval_bits_per_character")}
            lines += [
                f"- held-out {key.removeprefix('eval_').replace('_', ' ')}: {value:.4f}"
                for key, value in held_out.items()
            ]
            lines.append("")
    if merged_adapter:
        lines += ["The LoRA adapter of the last stage is merged into these weights.", ""]
    if eval_results:
        lines += ["## Evaluation", ""]
        if eval_source:
            lines += [f"From `{eval_source}`.", ""]
        lines += ["| metric | value |", "|---|---|"]
        lines += [f"| {key} | {value:.4g} |" for key, value in flatten_metrics(eval_results)]
        lines.append("")
    return "\n".join(lines)


def read_eval_results(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object of results")
    return data
