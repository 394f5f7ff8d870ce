"""A build killed mid-run resumes: the rerun skips every finished task and ends with the same shards."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from training.data.build import BuildResult, ResumeConflict, build_corpus
from training.data.config import load_curation_config
from training.data.executors import stage_done

from .conftest import RawCorpus, read_shards

pytestmark = pytest.mark.shared_data

REPO_ROOT = Path(__file__).resolve().parents[3]


def _finished_tasks(work: Path) -> dict[Path, int]:
    """Each finished task's stats file and when it was written; a task that runs again rewrites it."""
    return {path: path.stat().st_mtime_ns for path in sorted(work.glob("logs/*/stats/*.json"))}


def _kill_when(process: subprocess.Popen[bytes], ready: Path, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not ready.exists():
        assert process.poll() is None, "the build ended before it could be killed"
        assert time.monotonic() < deadline, f"{ready} did not appear in {timeout_s} s"
        time.sleep(0.05)
    # SIGKILL, as a power cut or the OOM killer would: no cleanup, no chance to finish the task at hand. The
    # whole process group goes, so no extraction or manager process of the build outlives it.
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def test_killed_build_resumes_without_redoing_finished_tasks(
    raw_corpus: RawCorpus, built_corpus: BuildResult, tmp_path: Path
) -> None:
    config_path = raw_corpus.config(tmp_path / "corpus")
    config = load_curation_config(config_path)
    command = [sys.executable, "-c", "from soro.cli import app; app()", "data", "build", str(config_path)]
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    # Mid-run: the first PDF is done, the second and everything after it are not.
    _kill_when(process, config.work / "logs" / "prepare-pdfs" / "completions" / "00000")
    assert process.returncode == -signal.SIGKILL

    first_run = _finished_tasks(config.work)
    assert first_run, "nothing finished before the kill"
    assert not config.report_folder.exists()

    resumed = build_corpus(config)

    assert all(stage_done(resumed.layout, stage) for stage in resumed.stages)
    after = _finished_tasks(config.work)
    assert {path: after[path] for path in first_run} == first_run, "a task finished before the kill ran again"
    assert len(after) > len(first_run)

    def rows(shards: Path) -> list[dict[str, object]]:
        return sorted(read_shards(shards), key=lambda row: (str(row["source"]), str(row["id"])))

    assert rows(resumed.layout.shards) == rows(built_corpus.layout.shards)
    assert resumed.report is not None and built_corpus.report is not None
    assert resumed.report.sources == built_corpus.report.sources
    assert resumed.report.removal_reasons == built_corpus.report.removal_reasons


def test_resuming_with_another_config_is_refused(raw_corpus: RawCorpus, built_corpus: BuildResult) -> None:
    config_path = built_corpus.layout.shards.parent / "changed.yaml"
    raw = yaml.safe_load(raw_corpus.config(built_corpus.layout.shards).read_text(encoding="utf-8"))
    raw["language"] = {"threshold": 0.5}
    config_path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")

    with pytest.raises(ResumeConflict, match="language"):
        build_corpus(load_curation_config(config_path))
