"""The model card (README.md) of an exported Soro model: where it comes from, what it learnt, how it scores."""

from __future__ import annotations

import json
from pathlib import Path

from training.common.run_summary import RunSummary
from training.eval.results import EvalResults, format_score, read_results

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
    eval_results: EvalResults | None = None,
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
    if eval_results is not None:
        hash_note = f", weights sha256 `{eval_results.model_hash[:16]}…`" if eval_results.model_hash else ""
        lines += [
            "## Evaluation",
            "",
            f"Run `{eval_results.name}` of `{eval_results.model}` ({eval_results.backend} backend{hash_note}), "
            f"{eval_results.date}; 95 % bootstrap intervals over the items.",
            "",
            "| task | metric | value | 95 % CI | n |",
            "|---|---|---:|---|---:|",
        ]
        for score in eval_results.scores:
            value = "–" if score.value is None else format_score(score.value)
            interval = "–" if score.ci95 is None else f"{format_score(score.ci95[0])} – {format_score(score.ci95[1])}"
            arrow = "↑" if score.higher_is_better else "↓"
            lines.append(f"| {score.task} | {score.metric} {arrow} | {value} | {interval} | {score.n} |")
        lines.append("")
    return "\n".join(lines)


def read_eval_results(path: Path | None) -> EvalResults | None:
    """The ``results.json`` of ``soro eval run`` (or its run folder), checked; any other JSON is an error."""
    return None if path is None else read_results(path)
