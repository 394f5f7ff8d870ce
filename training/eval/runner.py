"""``soro eval run``: every task of a config on one backend, results written as they finish.

The run folder holds ``run.json`` (what was measured and how), one ``<task>.json`` per task and
``results.md``. A task whose data or backend falls short is recorded as skipped with the reason; the others
still run.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import openai

from training.config import config_to_dict
from training.eval.backends.base import Backend, UnsupportedByBackend
from training.eval.config import EvalConfig, ModelConfig
from training.eval.progress import task_bar
from training.eval.records import DatasetError
from training.eval.results import (
    RUN_FILE,
    TABLE_FILE,
    EvalResults,
    TaskResult,
    markdown_table,
    model_hash,
    scores_of,
    write_task_result,
)
from training.eval.tasks import run_task

if TYPE_CHECKING:
    from rich.progress import Progress

log = logging.getLogger(__name__)


def open_backend(model: ModelConfig) -> Backend:
    """The backend a model section asks for (loading a local model takes a while and memory)."""
    if model.local is not None:
        from training.eval.backends.local import LocalModel

        local = model.local
        return LocalModel(
            local.path, precision=local.precision, batch_size=local.batch_size, max_length=local.max_length
        )
    assert model.endpoint is not None  # ModelConfig checks that exactly one is given
    from training.eval.backends.endpoint import Endpoint

    endpoint = model.endpoint
    return Endpoint(
        endpoint.base_url,
        model=endpoint.model,
        api_key=os.environ.get(endpoint.api_key_env, "EMPTY"),
        concurrency=endpoint.concurrency,
        timeout_seconds=endpoint.timeout_seconds,
    )


@dataclass(frozen=True)
class RunOutcome:
    out_dir: Path
    results: list[TaskResult]
    skipped: dict[str, str]  # task name → why


def _write_summary(out_dir: Path, run: dict[str, Any], results: list[TaskResult]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / RUN_FILE).write_text(json.dumps(run, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    table = markdown_table(run["name"], results)
    if run["skipped"]:
        table += "\nSkipped:\n\n" + "".join(f"- {name}: {why}\n" for name, why in run["skipped"].items())
    (out_dir / TABLE_FILE).write_text(table, encoding="utf-8")
    backend = run["backend"]
    local = backend.get("kind") == "local"
    EvalResults(
        name=run["name"],
        model=str(backend.get("path") if local else backend.get("model") or backend.get("base_url")),
        model_hash=model_hash(Path(backend["path"])) if local else None,
        date=run["finished_at"],
        backend=str(backend.get("kind")),
        scores=scores_of(results),
    ).write(out_dir)


async def run_suite(
    config: EvalConfig, backend: Backend, out_dir: Path, *, system_prompt: str, progress: Progress | None = None
) -> RunOutcome:
    """Run the tasks one after another, writing each result as soon as it is ready (a bar each on ``progress``)."""
    run: dict[str, Any] = {
        "name": config.name,
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "backend": backend.describe(),
        "config": config_to_dict(config),
        "tasks": [task.name for task in config.tasks],
        "skipped": {},
    }
    results: list[TaskResult] = []
    for task in config.tasks:
        log.info("task %s: running", task.name)
        try:
            with task_bar(progress, task.name):
                result = await run_task(
                    task,
                    backend,
                    data_root=config.data_root,
                    scoring=config.scoring,
                    system_prompt=system_prompt,
                    limit=config.limit,
                )
        except (DatasetError, UnsupportedByBackend, openai.APIError) as exc:
            # A missing file, a backend that cannot do the task, or an endpoint that refused a request
            # (e.g. a prompt longer than its context): the other tasks still run.
            log.warning("task %s: skipped: %s", task.name, exc)
            run["skipped"][task.name] = str(exc)
            continue
        write_task_result(out_dir, result)
        results.append(result)
        log.info(
            "task %s: %s = %.4f (%d items, %.1f s)",
            task.name,
            result.headline.name,
            result.headline.value,
            len(result.item_ids),
            result.seconds,
        )
    run["backend"] = backend.describe()  # an endpoint learns its served model name on the first request
    run["finished_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    _write_summary(out_dir, run, results)
    return RunOutcome(out_dir=out_dir, results=results, skipped=dict(run["skipped"]))
