"""FP8 and INT4 (W4A16) variants of an exported model with llm-compressor (``soro train quantize``).

Both are written in the compressed-tensors format that vLLM loads directly:

- ``fp8``: weights FP8 (E4M3) per output channel, activations FP8 per token computed on the fly. Needs no
  calibration data; about half the bf16 size; runs on GPUs with FP8 units (Hopper, Ada) and falls back to
  weight-only FP8 (Marlin) on Ampere.
- ``w4a16``: weights 4-bit integers in groups of 128 with one scale each, activations bf16, quantised with GPTQ
  on calibration text (use held-out SFT examples or corpus documents); about a quarter of the bf16 size.

llm-compressor pins an older transformers than the training stack, so it lives in its own virtual environment
(``SORO_QUANTIZE_VENV``, made by ``scripts/setup-quantize.sh``), as vLLM does. This module stays in the project
venv: it renders the calibration texts with the project's chat template, runs ``training/export/compress.py``
(the recipe and llm-compressor's one-shot run) with that venv's interpreter, then writes the size report.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from training.common.run_summary import SUMMARY_FILE
from training.export import compress
from training.export.compress import PRESET_SCHEMES, STEP_PREFIX, STEPS, W4A16_GROUP_SIZE
from training.export.export import weight_bytes

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

Scheme = Literal["fp8", "w4a16"]
# Run as a file (not imported) in llm-compressor's venv, where the project is not installed.
COMPRESS_SCRIPT = Path(compress.__file__)
_LOG_TAIL_LINES = 40


class QuantizeError(RuntimeError):
    """Quantisation cannot run here or failed; the message says what is missing or quotes the failure."""


@dataclass(frozen=True)
class QuantizeOptions:
    scheme: Scheme
    # Text for GPTQ's calibration (w4a16): SFT JSONL (rendered with the chat template) or corpus shards.
    calibration: list[Path] = field(default_factory=list)
    calibration_samples: int = 256
    max_seq_len: int = 2048
    ignore: list[str] = field(default_factory=lambda: list(compress.DEFAULT_IGNORE))

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


def quantize_python(venv: Path) -> Path:
    """The interpreter of llm-compressor's venv, or a clear error naming the set-up script."""
    python = venv / "bin" / "python"
    if not python.is_file():
        raise QuantizeError(
            f"llm-compressor's virtual environment was not found at {venv}: run scripts/setup-quantize.sh "
            "(or point SORO_QUANTIZE_VENV at one)"
        )
    return python


def linear_input_sizes(model_dir: Path) -> dict[str, int]:
    """The input width of each kind of linear layer of a Gemma-style decoder, from its config.json."""
    raw = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    text = raw.get("text_config", raw)
    hidden = int(text["hidden_size"])
    head_dim = int(text.get("head_dim") or hidden // int(text["num_attention_heads"]))
    return {
        "q_proj/k_proj/v_proj/gate_proj/up_proj (hidden_size)": hidden,
        "o_proj (num_attention_heads × head_dim)": int(text["num_attention_heads"]) * head_dim,
        "down_proj (intermediate_size)": int(text["intermediate_size"]),
    }


def check_groupable(model_dir: Path, options: QuantizeOptions) -> None:
    """W4A16 needs every quantised linear layer's input width to be a multiple of the group size; say so first."""
    if options.scheme != "w4a16":
        return
    sizes = linear_input_sizes(model_dir)
    misfits = {name: size for name, size in sizes.items() if size % W4A16_GROUP_SIZE}
    if misfits:
        listed = ", ".join(f"{name} = {size}" for name, size in misfits.items())
        raise QuantizeError(
            f"w4a16 quantises weights in groups of {W4A16_GROUP_SIZE} input features, and {model_dir} has linear "
            f"layers whose input width {W4A16_GROUP_SIZE} does not divide: {listed}. Use --scheme fp8 for this "
            "model (no groups), or quantise a model whose widths are multiples of 128 (every Gemma 3 release is)."
        )


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


def quantize_model(model_dir: Path, out_dir: Path, options: QuantizeOptions, *, venv: Path) -> SizeReport:
    """Write the ``options.scheme`` variant of the exported model at ``model_dir`` to ``out_dir``.

    llm-compressor runs in ``venv`` (see the module docstring); its output is quoted when it fails.
    """
    python = quantize_python(venv)
    check_groupable(model_dir, options)
    with tempfile.TemporaryDirectory(prefix="soro-quantize-") as scratch:
        command = [
            str(python),
            "-P",  # the working directory off sys.path: the repo's packages must not shadow that venv's imports
            str(COMPRESS_SCRIPT),
            "--model",
            str(model_dir),
            "--out",
            str(out_dir),
            "--scheme",
            options.scheme,
            "--max-seq-len",
            str(options.max_seq_len),
        ]
        for module in options.ignore:
            command += ["--ignore", module]
        if options.calibration:
            from training.common.models import load_tokenizer

            texts = calibration_texts(options.calibration, load_tokenizer(str(model_dir)), options.calibration_samples)
            texts_file = Path(scratch) / "calibration.json"
            texts_file.write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
            command += ["--calibration", str(texts_file)]
        _run(command, venv)
    for name in ("generation_config.json", SUMMARY_FILE):
        if (model_dir / name).is_file():
            shutil.copy2(model_dir / name, out_dir / name)
    report = size_report(model_dir, out_dir, options.scheme)
    write_report(report, model_dir, out_dir)
    return report


def _run(command: list[str], venv: Path) -> None:
    """Run llm-compressor, advancing a progress bar on its step lines; quote its output when it fails."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    env = {key: value for key, value in os.environ.items() if key not in {"PYTHONPATH", "PYTHONHOME"}}
    env.update(
        VIRTUAL_ENV=str(venv),
        PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
    )
    output: list[str] = []
    columns = (TextColumn("quantise: {task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True)) as progress:
        bar = progress.add_task("start", total=len(STEPS))
        with subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, bufsize=1
        ) as process:
            assert process.stdout is not None
            for line in process.stdout:
                output.append(line.rstrip("\n"))
                if line.startswith(STEP_PREFIX):
                    number, _, what = line.removeprefix(STEP_PREFIX).strip().partition(" ")
                    progress.update(bar, completed=int(number.split("/")[0]) - 1, description=what.strip())
            returncode = process.wait()
        if returncode == 0:
            progress.update(bar, completed=len(STEPS), description="done")
    if returncode != 0:
        tail = "\n".join(output[-_LOG_TAIL_LINES:])
        raise QuantizeError(f"llm-compressor failed ({returncode}): {' '.join(command)}\n{tail}")


def write_report(report: SizeReport, model_dir: Path, out_dir: Path) -> None:
    """``size_report.json`` and the model card of the source with a quantisation section appended."""
    (out_dir / "size_report.json").write_text(json.dumps(report.as_dict(), indent=2) + "\n", encoding="utf-8")
    card = model_dir / "README.md"
    text = card.read_text(encoding="utf-8") if card.is_file() else f"# {out_dir.name}\n"
    (out_dir / "README.md").write_text(text.rstrip("\n") + "\n\n" + report.markdown(), encoding="utf-8")
