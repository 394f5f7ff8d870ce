"""``soro data build``: run (or resume) every stage of a curation config, then write the report."""

from __future__ import annotations

import contextlib
import json
import shutil
from dataclasses import dataclass
from typing import Any

from rich.console import Console

from training.data.config import CurationConfig, resume_fingerprint
from training.data.executors import make_executor, stage_done
from training.data.report import CurationReport, write_report
from training.data.stages import Layout, Stage, build_stages, layout_of


class ResumeConflict(RuntimeError):
    """The work folder holds a run of a different config; resuming it would mix two corpora."""


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
        for folder in (layout.work, layout.shards, layout.report):
            shutil.rmtree(folder, ignore_errors=True)
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

    quiet = contextlib.nullcontext(console) if verbose else output_to(layout.console_log)
    with quiet as display, StageProgress(display, stages, layout) as progress:
        for stage in stages:
            with progress.running(stage):
                make_executor(stage, config.executor, layout).run()


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
    _claim_work_dir(config, layout, restart)
    stages = build_stages(config)
    if config.executor.kind == "slurm":
        if not all(stage_done(layout, stage) for stage in stages):
            _submit_to_slurm(stages, config, layout, console)
            return BuildResult(layout, stages, None)
    else:
        _run_in_this_process(stages, config, layout, console, verbose)
    return BuildResult(layout, stages, write_report(config, stages, layout))
