"""``soro eval run`` and ``soro eval compare`` from the command line, against OpenAI-compatible stand-ins."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from tests.training.eval.conftest import AnswerKey, suite_dict
from tests.training.eval.stand_in import OpenAIStandIn
from training.eval.backends.endpoint import Endpoint
from training.eval.config import load_eval_config
from training.eval.runner import run_suite

pytestmark = pytest.mark.shared_data

SORO = str(Path(sys.executable).with_name("soro"))
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


async def _soro(*args: str, cwd: Path) -> tuple[int, str]:
    # A subprocess, awaited, so the stand-ins keep answering on this event loop meanwhile.
    process = await asyncio.create_subprocess_exec(
        SORO, *args, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=120)
    return process.returncode or 0, output.decode()


def _suite_file(eval_data: Path, tmp_path: Path) -> Path:
    raw = suite_dict(eval_data)
    raw["tasks"] = [task for task in raw["tasks"] if task["type"] != "bpc"]
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


async def test_run_and_compare_write_tables_and_a_chart_with_noise_markers(
    eval_data: Path, answer_key: AnswerKey, tmp_path: Path
) -> None:
    suite = _suite_file(eval_data, tmp_path)
    async with OpenAIStandIn(answer_key.oracle) as oracle:
        code, output = await _soro(
            "eval",
            "run",
            str(suite),
            "--endpoint",
            oracle.base_url,
            "--name",
            "oracle",
            "--out",
            "runs/oracle",
            cwd=tmp_path,
        )
        assert code == 0, output
        assert "| tajlib | accuracy | 1.000 |" in output
        # A progress bar per task, counting the requests it sent (8 TajLiB items, one reply each).
        assert re.search(r"tajlib +━+ 8/8 +requests", output), output
    # The constant answerer's run is made in-process: the command line's part is already proven above.
    async with OpenAIStandIn(lambda messages: "A") as constant:
        backend = Endpoint(constant.base_url)
        config = replace(load_eval_config(suite), name="constant")
        await run_suite(config, backend, tmp_path / "runs" / "constant", system_prompt="Ту Соро ҳастӣ.")
        await backend.aclose()
    # A second run that scored exactly the same, e.g. the model reloaded.
    shutil.copytree(tmp_path / "runs" / "oracle", tmp_path / "runs" / "again")
    run_file = tmp_path / "runs" / "again" / "results.json"
    run_file.write_text(
        json.dumps({**json.loads(run_file.read_text(encoding="utf-8")), "name": "again"}), encoding="utf-8"
    )

    code, output = await _soro(
        "eval",
        "compare",
        "runs/oracle",
        "runs/constant",
        "runs/again",
        "--out",
        "compare",
        "--resamples",
        "300",
        cwd=tmp_path,
    )
    assert code == 0, output
    table = (tmp_path / "compare" / "compare.md").read_text(encoding="utf-8")
    assert "| task | metric | oracle | constant | again |" in table
    tajlib = next(line for line in table.splitlines() if line.startswith("| tajlib | accuracy"))
    oracle_cell, constant_cell, again_cell = (cell.strip() for cell in tajlib.split("|")[3:6])
    assert oracle_cell == "1.000 [1.000, 1.000]"
    assert constant_cell.startswith("0.250 [") and constant_cell.endswith("(−0.750)")  # a real loss: no marker
    assert again_cell.endswith("(+0.000 ≈)")  # identical: within noise
    chart = (tmp_path / "compare" / "compare.png").read_bytes()
    assert chart.startswith(PNG_SIGNATURE)
    assert len(chart) > 10_000


async def test_run_reports_config_mistakes_and_missing_data(eval_data: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ntasks:\n  - {type: tajlib, path: t.jsonl, shots: 5}\n", encoding="utf-8")
    code, output = await _soro("eval", "run", str(bad), "--endpoint", "http://127.0.0.1:9/v1", cwd=tmp_path)
    assert code == 2
    assert "tasks[0]: unknown key(s) shots" in " ".join(output.replace("│", " ").split())  # rich wraps the box

    missing = tmp_path / "missing.yaml"
    missing.write_text("name: x\ntasks:\n  - {type: tajlib, path: absent.jsonl}\n", encoding="utf-8")
    async with OpenAIStandIn(lambda messages: "A") as constant:
        code, output = await _soro(
            "eval",
            "run",
            str(missing),
            "--endpoint",
            constant.base_url,
            "--data-root",
            str(eval_data),
            "--out",
            "r",
            cwd=tmp_path,
        )
    assert code == 1  # nothing could be measured: the run says so and fails
    assert "absent.jsonl: no such file" in (tmp_path / "r" / "results.md").read_text(encoding="utf-8")
