"""``soro data build``: run (or resume) every stage of a curation config, then write the report."""

from __future__ import annotations

import contextlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from training.data.config import CurationConfig, resume_fingerprint
from training.data.executors import connect_ray, make_executor, stage_done
from training.data.report import CurationReport, write_report
from training.data.stages import Layout, Stage, build_stages, layout_of


class ResumeConflict(RuntimeError):
    """The work folder holds a run of a different config; resuming it would mix two corpora."""


class StageFailed(RuntimeError):
    """A task of a stage raised; the finished tasks stay finished, so running again resumes."""


def _check_sources(config: CurationConfig) -> None:
    """A misspelt local path fails here, in one line, rather than as a traceback from inside a task."""
    for source in config.sources:
        if "://" not in source.path and not Path(source.path).exists():
            raise FileNotFoundError(f"source {source.name}: {source.path} does not exist")


@dataclass(frozen=True)
class BuildResult:
    layout: Layout
    stages: list[Stage]
    # None while Slurm jobs are still to run: a later `soro data build` writes it.
    report: CurationReport | None


def _claim_work_dir(config: CurationConfig, layout: Layout, restart: bool) -> None:
    """Record the config in the work folder, or check that a previous, unfinished run used the same one."""
    fingerprint_file = layout.work / "config.json"
    if restart:
        shutil.rmtree(layout.work, ignore_errors=True)
        shutil.rmtree(layout.report, ignore_errors=True)
        # Only what the shard writer makes: the shard folder may be shared with other files.
        for shard in [*layout.shards.glob("*.parquet"), *layout.shards.glob("*.jsonl.gz")]:
            shard.unlink()
    fingerprint = resume_fingerprint(config)
    if fingerprint_file.is_file():
        previous: dict[str, Any] = json.loads(fingerprint_file.read_text(encoding="utf-8"))
        changed = sorted(
            key for key in fingerprint.keys() | previous.keys() if fingerprint.get(key) != previous.get(key)
        )
        if changed:
            raise ResumeConflict(
                f"{layout.work} holds a run of another config (different: {', '.join(changed)}). "
                "Resume with the same config, or start over with --restart."
            )
        return
    layout.work.mkdir(parents=True, exist_ok=True)
    fingerprint_file.write_text(json.dumps(fingerprint, ensure_ascii=False, indent=2), encoding="utf-8")


def _run_in_this_process(
    stages: list[Stage], config: CurationConfig, layout: Layout, console: Console, verbose: bool
) -> None:
    """Local or Ray: stage after stage, each skipping the tasks a previous run finished."""
    from training.data.progress import StageProgress, output_to

    if config.executor.kind == "ray":
        connect_ray(config.executor.ray)
    quiet = contextlib.nullcontext(console) if verbose else output_to(layout.console_log)
    with quiet as display, StageProgress(display, stages, layout) as progress:
        for stage in stages:
            with progress.running(stage):
                try:
                    make_executor(stage, config.executor, layout).run()
                except Exception as exc:
                    raise StageFailed(
                        f"stage {stage.slug} failed: {exc!r}. Its task logs: {layout.logs(stage.slug) / 'logs'}. "
                        "Finished tasks are kept: run the same command again to resume."
                    ) from exc


def _submit_to_slurm(stages: list[Stage], config: CurationConfig, layout: Layout, console: Console) -> None:
    """One Slurm job array per stage, each waiting for the previous one; finished stages are not submitted."""
    executor = None
    for stage in stages:
        executor = make_executor(stage, config.executor, layout, depends=executor)
    assert executor is not None
    executor.run()
    console.print(
        f"Submitted the unfinished stages to Slurm; logs in {layout.work / 'logs'}. "
        "Run the same command again when the jobs are done to write the report."
    )


def build_corpus(
    config: CurationConfig, *, restart: bool = False, console: Console | None = None, verbose: bool = False
) -> BuildResult:
    console = console or Console(stderr=True)
    layout = layout_of(config)
    _check_sources(config)
    _claim_work_dir(config, layout, restart)
    stages = build_stages(config)
    if config.executor.kind == "slurm":
        if not all(stage_done(layout, stage) for stage in stages):
            _submit_to_slurm(stages, config, layout, console)
            return BuildResult(layout, stages, None)
    else:
        _run_in_this_process(stages, config, layout, console, verbose)
    return BuildResult(layout, stages, write_report(config, stages, layout))
