"""`soro eval …` verbs."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, help="Evaluate a model folder or an endpoint; compare runs.")


@app.command()
def run(
    config: Annotated[Path, typer.Argument(help="Suite config (YAML), e.g. configs/eval/tajik.yaml.")],
    model: Annotated[Path | None, typer.Option(help="Local model folder (log-likelihood scoring).")] = None,
    endpoint: Annotated[
        str | None, typer.Option(help="OpenAI-compatible base URL ending in /v1 (generation scoring).")
    ] = None,
    served_model: Annotated[str | None, typer.Option(help="Model name at the endpoint (default: the first).")] = None,
    name: Annotated[str | None, typer.Option(help="Run name: the table's column and the output folder.")] = None,
    data_root: Annotated[Path | None, typer.Option(help="Folder the task paths are relative to.")] = None,
    out: Annotated[Path | None, typer.Option(help="Run folder (default: output_dir/name).")] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many items per task.")] = None,
    task: Annotated[list[str] | None, typer.Option(help="Only these tasks (repeatable).")] = None,
    overrides: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a config key: --set limit=50, --set tasks.0.limit=10 (repeatable)."),
    ] = None,
) -> None:
    """Run a suite on a model folder or an endpoint: JSON per task and a Markdown table in the run folder."""
    from soro.logs import setup_logging
    from soro.settings import Settings
    from training.config import ConfigError
    from training.eval.config import EndpointConfig, LocalModelConfig, ModelConfig, load_eval_config
    from training.eval.runner import open_backend, run_suite

    settings = Settings()
    setup_logging(settings.log_level)
    try:
        suite = load_eval_config(config, overrides or [])
    except ConfigError as exc:
        raise typer.BadParameter(str(exc), param_hint="CONFIG") from None
    if model is not None and endpoint is not None:
        raise typer.BadParameter("give --model or --endpoint, not both")
    if model is not None:
        suite = replace(suite, model=ModelConfig(local=LocalModelConfig(path=model)))
    elif endpoint is not None:
        suite = replace(suite, model=ModelConfig(endpoint=EndpointConfig(base_url=endpoint, model=served_model)))
    if suite.model is None:
        raise typer.BadParameter("the config names no model: give --model FOLDER or --endpoint URL")
    if task:
        unknown = sorted(set(task) - {t.name for t in suite.tasks})
        if unknown:
            raise typer.BadParameter(f"no such task(s): {', '.join(unknown)}", param_hint="--task")
        suite = replace(suite, tasks=[t for t in suite.tasks if t.name in task])
    suite = replace(
        suite,
        name=name or suite.name,
        data_root=data_root or suite.data_root,
        limit=limit if limit is not None else suite.limit,
    )
    out_dir = out or suite.output_dir / suite.name

    async def main() -> int:
        assert suite.model is not None
        from training.eval.progress import new_progress

        backend = open_backend(suite.model)
        try:
            with new_progress() as progress:
                outcome = await run_suite(
                    suite, backend, out_dir, system_prompt=settings.system_prompt, progress=progress
                )
        finally:
            await backend.aclose()
        typer.echo((outcome.out_dir / "results.md").read_text(encoding="utf-8"))
        typer.echo(f"Results: {outcome.out_dir}")
        return 1 if outcome.skipped else 0

    raise typer.Exit(asyncio.run(main()))


@app.command()
def compare(
    runs: Annotated[list[Path], typer.Argument(help="Run folders; the first is the baseline.")],
    out: Annotated[Path, typer.Option(help="Folder for compare.md and compare.png.")] = Path("out/eval/compare"),
    resamples: Annotated[int, typer.Option(help="Bootstrap resamples.")] = 1000,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
) -> None:
    """Side-by-side table and bar chart of runs, with bootstrap intervals and a within-noise marker."""
    from training.eval.compare import compare_runs

    try:
        table, chart = compare_runs(list(runs), out, resamples=resamples, seed=seed)
    except FileNotFoundError as exc:
        raise typer.BadParameter(str(exc), param_hint="RUNS") from None
    typer.echo(table.read_text(encoding="utf-8"))
    typer.echo(f"Table: {table}\nChart: {chart}")
