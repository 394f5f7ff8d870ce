"""FP8 and INT4 (W4A16) variants of an exported model with llm-compressor (``soro train quantize``).

Both are written in the compressed-tensors format that vLLM loads directly:

- ``fp8``: weights FP8 (E4M3) per output channel, activations FP8 per token computed on the fly. Needs no
  calibration data; about half the bf16 size; runs on GPUs with FP8 units (Hopper, Ada) and falls back to
  weight-only FP8 (Marlin) on Ampere.
- ``w4a16``: weights 4-bit integers in groups of 128 with one scale each, activations bf16, quantised with GPTQ
  on calibration text (use held-out SFT examples or corpus documents); about a quarter of the bf16 size.

llm-compressor pins an older transformers than the training stack, so it lives in its own virtual
environment: ``pip install -e '.[quantize]'`` into a fresh venv (see docs/training.md).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from training.common.run_summary import SUMMARY_FILE
from training.export.export import weight_bytes

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

Scheme = Literal["fp8", "w4a16"]
# Our names → llm-compressor's preset schemes.
PRESET_SCHEMES: dict[str, str] = {"fp8": "FP8_DYNAMIC", "w4a16": "W4A16"}


class QuantizeError(RuntimeError):
    """Quantisation cannot run here; the message says what is missing."""


@dataclass(frozen=True)
class QuantizeOptions:
    scheme: Scheme
    # Text for GPTQ's calibration (w4a16): SFT JSONL (rendered with the chat template) or corpus shards.
    calibration: list[Path] = field(default_factory=list)
    calibration_samples: int = 256
    max_seq_len: int = 2048
    # lm_head stays in bf16: quantising it costs quality out of proportion to the bytes it saves.
    ignore: list[str] = field(default_factory=lambda: ["lm_head"])

    def __post_init__(self) -> None:
        if self.scheme not in PRESET_SCHEMES:
            raise ValueError(f"scheme must be one of {sorted(PRESET_SCHEMES)}, not {self.scheme!r}")
        if self.scheme == "w4a16" and not self.calibration:
            raise ValueError("w4a16 quantises with GPTQ, which needs calibration text: pass --calibration")
        if self.calibration_samples < 1 or self.max_seq_len < 8:
            raise ValueError("calibration_samples must be ≥ 1 and max_seq_len ≥ 8")


@dataclass(frozen=True)
class SizeReport:
    scheme: str
    source_bytes: int
    quantized_bytes: int

    @property
    def ratio(self) -> float:
        return self.quantized_bytes / self.source_bytes if self.source_bytes else float("nan")

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio}

    def markdown(self) -> str:
        return (
            "## Quantisation\n\n"
            f"Scheme `{self.scheme}` ({PRESET_SCHEMES.get(self.scheme, self.scheme)}, compressed-tensors format, "
            "made with llm-compressor).\n\n"
            "| | weights |\n|---|---|\n"
            f"| original | {self.source_bytes / 2**20:.1f} MiB |\n"
            f"| {self.scheme} | {self.quantized_bytes / 2**20:.1f} MiB ({self.ratio:.0%}) |\n"
        )


def size_report(source: Path, quantized: Path, scheme: str) -> SizeReport:
    return SizeReport(scheme=scheme, source_bytes=weight_bytes(source), quantized_bytes=weight_bytes(quantized))


def require_llmcompressor() -> None:
    if importlib.util.find_spec("llmcompressor") is None:
        raise QuantizeError(
            "llm-compressor is not installed in this environment. It pins an older transformers than the "
            "training stack, so install it into a separate venv: "
            "python -m venv .venv-quantize && .venv-quantize/bin/pip install -e '.[quantize]', "
            "then run .venv-quantize/bin/soro train quantize …"
        )


def quantization_recipe(options: QuantizeOptions) -> list[Any]:
    """The llm-compressor modifiers for ``options.scheme`` (round-to-nearest FP8, or GPTQ INT4)."""
    require_llmcompressor()
    from llmcompressor.modifiers.quantization import GPTQModifier, QuantizationModifier

    preset = PRESET_SCHEMES[options.scheme]
    if options.scheme == "fp8":
        return [QuantizationModifier(targets="Linear", scheme=preset, ignore=list(options.ignore))]
    return [GPTQModifier(targets="Linear", scheme=preset, ignore=list(options.ignore))]


def calibration_texts(paths: list[Path], tokenizer: PreTrainedTokenizerBase, limit: int) -> list[str]:
    """Up to ``limit`` texts: chat examples rendered with the chat template, or plain documents."""
    from training.common.documents import read_documents
    from training.sft.data import ValidationReport, read_examples, render_chat

    texts: list[str] = []
    for path in paths:
        if path.suffix == ".jsonl" and _is_chat_file(path):
            examples = read_examples([path], ValidationReport())
            texts += [render_chat(tokenizer, example.messages) for example in examples]
        else:
            texts += list(read_documents([path])["text"])
        if len(texts) >= limit:
            break
    return texts[:limit]


def _is_chat_file(path: Path) -> bool:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                record = json.loads(line)
                return isinstance(record, dict) and ("messages" in record or "instruction" in record)
    return False


def quantize_model(model_dir: Path, out_dir: Path, options: QuantizeOptions) -> SizeReport:
    """Write the ``options.scheme`` variant of the exported model at ``model_dir`` to ``out_dir``."""
    require_llmcompressor()
    from datasets import Dataset
    from llmcompressor import oneshot

    from training.common.models import load_causal_lm, load_tokenizer

    model = load_causal_lm(str(model_dir), precision="bf16-true")
    tokenizer = load_tokenizer(str(model_dir))
    dataset = None
    if options.calibration:
        texts = calibration_texts(options.calibration, tokenizer, options.calibration_samples)
        dataset = Dataset.from_dict(
            tokenizer(texts, add_special_tokens=False, truncation=True, max_length=options.max_seq_len)
        )
    oneshot(
        model=model,
        dataset=dataset,
        recipe=quantization_recipe(options),
        max_seq_length=options.max_seq_len,
        num_calibration_samples=options.calibration_samples,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir), save_compressed=True)
    tokenizer.save_pretrained(str(out_dir))
    for name in ("generation_config.json", SUMMARY_FILE):
        if (model_dir / name).is_file():
            shutil.copy2(model_dir / name, out_dir / name)
    report = size_report(model_dir, out_dir, options.scheme)
    write_report(report, model_dir, out_dir)
    return report


def write_report(report: SizeReport, model_dir: Path, out_dir: Path) -> None:
    """``size_report.json`` and the model card of the source with a quantisation section appended."""
    (out_dir / "size_report.json").write_text(json.dumps(report.as_dict(), indent=2) + "\n", encoding="utf-8")
    card = model_dir / "README.md"
    text = card.read_text(encoding="utf-8") if card.is_file() else f"# {out_dir.name}\n"
    (out_dir / "README.md").write_text(text.rstrip("\n") + "\n\n" + report.markdown(), encoding="utf-8")
