"""`soro train …` verbs: continual pretraining, SFT, export and quantisation.

On many GPUs or nodes the same verbs run under ``accelerate launch`` (configs in configs/train/accelerate/):

    accelerate launch --config_file configs/train/accelerate/fsdp.yaml -m training.train_cli cpt CONFIG
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, help="Continual pretraining, SFT and export.")


class ExportDtypeChoice(StrEnum):
    bfloat16 = "bfloat16"
    float16 = "float16"
    float32 = "float32"


class SchemeChoice(StrEnum):
    fp8 = "fp8"
    w4a16 = "w4a16"


def _setup_logging() -> None:
    from soro.logs import setup_logging
    from soro.settings import Settings

    setup_logging(Settings().log_level)


def _fail(exc: Exception) -> typer.Exit:
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    return typer.Exit(2)


ConfigFile = Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="YAML run config")]
Overrides = Annotated[
    list[str] | None,
    typer.Option("--set", help="override a config key: --set train.max_steps=100 (repeatable; value read as YAML)"),
]


@app.command()
def cpt(config: ConfigFile, overrides: Overrides = None) -> None:
    """Continual pretraining on curated shards (packing, replay mix, held-out loss and bits per character)."""
    from training.config import ConfigError, load_config
    from training.cpt.config import CptConfig

    _setup_logging()
    try:
        parsed = load_config(config, CptConfig, overrides=overrides or [])
        from training.cpt.train import run_cpt

        typer.echo(run_cpt(parsed))
    except ConfigError as exc:
        raise _fail(exc) from exc


@app.command()
def sft(config: ConfigFile, overrides: Overrides = None) -> None:
    """Instruction tuning (full, LoRA or QLoRA) with loss on the assistant's tokens only."""
    from training.config import ConfigError, load_config
    from training.sft.config import SftConfig

    _setup_logging()
    try:
        parsed = load_config(config, SftConfig, overrides=overrides or [])
        from training.sft.train import run_sft

        typer.echo(run_sft(parsed))
    except ConfigError as exc:
        raise _fail(exc) from exc


@app.command()
def export(
    source: Annotated[
        Path, typer.Argument(exists=True, file_okay=False, help="a run's final/ folder (model or LoRA adapter)")
    ],
    out: Annotated[Path, typer.Argument(help="model folder to write")],
    base_model: Annotated[str | None, typer.Option(help="base of a LoRA adapter, if not the one it recorded")] = None,
    eval_results: Annotated[
        Path | None,
        typer.Option(exists=True, help="results.json of `soro eval run` (or its run folder) for the model card"),
    ] = None,
    dtype: Annotated[ExportDtypeChoice, typer.Option(help="dtype of the saved weights")] = ExportDtypeChoice.bfloat16,
    name: Annotated[str | None, typer.Option(help="model name in the card (default: the folder name)")] = None,
) -> None:
    """Merge LoRA, write weights, tokenizer, chat template, generation config and model card for vLLM."""
    from training.export.export import export_model

    _setup_logging()
    try:
        result = export_model(
            source, out, base_model=base_model, eval_results=eval_results, dtype=dtype.value, name=name
        )
    except ValueError as exc:
        raise _fail(exc) from exc
    summary = {
        "folder": str(result.folder),
        "merged_adapter": result.merged_adapter,
        "weight_bytes": result.weight_bytes,
    }
    typer.echo(json.dumps(summary))


@app.command()
def quantize(
    model_dir: Annotated[Path, typer.Argument(exists=True, file_okay=False, help="an exported model folder")],
    out: Annotated[Path, typer.Argument(help="folder for the quantised variant")],
    scheme: Annotated[SchemeChoice, typer.Option(help="fp8 (FP8 dynamic) or w4a16 (INT4 GPTQ)")],
    calibration: Annotated[
        list[Path] | None, typer.Option(exists=True, help="calibration JSONL or shards (needed for w4a16)")
    ] = None,
    samples: Annotated[int, typer.Option(help="calibration examples")] = 256,
    max_seq_len: Annotated[int, typer.Option(help="calibration sequence length")] = 2048,
) -> None:
    """FP8 or INT4 (W4A16) variant in compressed-tensors format with llm-compressor, plus a size report.

    llm-compressor runs in its own venv (SORO_QUANTIZE_VENV; scripts/setup-quantize.sh makes it).
    """
    from soro.settings import Settings
    from training.export.quantize import QuantizeError, QuantizeOptions, quantize_model

    _setup_logging()
    try:
        options = QuantizeOptions(
            scheme=scheme.value, calibration=calibration or [], calibration_samples=samples, max_seq_len=max_seq_len
        )
        # llm-compressor runs in its own venv (SORO_QUANTIZE_VENV, made by scripts/setup-quantize.sh).
        report = quantize_model(model_dir, out, options, venv=Settings().quantize_venv)
    except (ValueError, QuantizeError) as exc:
        raise _fail(exc) from exc
    typer.echo(json.dumps(report.as_dict()))


if __name__ == "__main__":
    app()
