"""`soro data …` verbs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, help="Corpus curation: web text, PDFs and school books → training shards.")


@app.command()
def build(
    config_path: Annotated[
        Path, typer.Argument(metavar="CONFIG", help="Curation config (YAML), e.g. configs/data/tajik-corpus.yaml.")
    ],
    restart: Annotated[bool, typer.Option(help="Forget an unfinished run in the work folder; start over.")] = False,
    verbose: Annotated[bool, typer.Option(help="Show datatrove's log lines instead of the progress display.")] = False,
    overrides: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a config key: --set executor.workers=4 (repeatable; value read as YAML)."),
    ] = None,
) -> None:
    """Build training shards from the sources in CONFIG; run it again to resume after a crash."""
    from rich.console import Console

    from training.config import ConfigError
    from training.data.build import ResumeConflict, StageFailed, build_corpus
    from training.data.config import load_curation_config

    console = Console(stderr=True)
    try:
        result = build_corpus(
            load_curation_config(config_path, overrides or []), restart=restart, console=console, verbose=verbose
        )
    except (ConfigError, ResumeConflict, FileNotFoundError) as exc:
        console.print(str(exc), style="red", markup=False)
        raise typer.Exit(2) from None
    except StageFailed as exc:
        console.print(str(exc), style="red", markup=False)
        raise typer.Exit(1) from None
    if result.report is None:
        return
    console.print(f"Shards: {result.layout.shards}")
    console.print(f"Report: {result.report.files['markdown']}")
    for totals in result.report.sources:
        console.print(
            f"  {totals.source}: {totals.docs_in:,} → {totals.docs_out:,} documents, "
            f"{totals.tokens_out:,} tokens ({result.report.tokenizer})"
        )
