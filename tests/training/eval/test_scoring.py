"""The scoring is wired: a model that knows the key scores 100 %, one that always says "A" scores chance.

Both are OpenAI-compatible HTTP stand-ins, so the whole endpoint path runs: prompts, streaming, reply parsing,
answer keys, aggregation, result files.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.training.eval.conftest import MCQ_TASKS, PAIRS, PROMPTS, AnswerKey, suite_config
from tests.training.eval.stand_in import OpenAIStandIn
from training.eval.backends.endpoint import Endpoint
from training.eval.config import eval_config_from_dict
from training.eval.results import ResultsError, TaskResult, read_results
from training.eval.runner import run_suite

pytestmark = pytest.mark.shared_data

SYSTEM_PROMPT = "Ту Соро ҳастӣ."


async def _run(base_url: str, data_root: Path, out_dir: Path) -> dict[str, TaskResult]:
    # Bits per character needs prompt log-probabilities, which a chat-only server does not give.
    config = suite_config(data_root, without=("bpc",))
    backend = Endpoint(base_url, concurrency=4)
    try:
        outcome = await run_suite(config, backend, out_dir, system_prompt=SYSTEM_PROMPT)
    finally:
        await backend.aclose()
    assert outcome.skipped == {}
    return {result.task: result for result in outcome.results}


async def test_an_answerer_that_knows_the_key_scores_full_marks(
    eval_data: Path, answer_key: AnswerKey, tmp_path: Path
) -> None:
    async with OpenAIStandIn(answer_key.oracle) as oracle:
        results = await _run(oracle.base_url, eval_data, tmp_path)

    for task in MCQ_TASKS:
        assert results[task].metric("accuracy").value == 1.0, task
        assert results[task].metric("answered").value == 1.0, task
        assert results[task].scoring == "generation"
    for task in ("flores_tgk_Cyrl-eng_Latn", "flores_rus_Cyrl-tgk_Cyrl"):
        assert len(results[task].item_ids) == PAIRS
        assert results[task].headline.value == pytest.approx(100.0), task
    assert results["tajik_replies"].headline.value == 1.0
    assert results["sms_budget"].headline.value == 1.0
    assert len(results["latency"].item_ids) == PROMPTS
    assert results["latency"].metric("latency_p50_s").value > 0.0
    # Every request of the live checks carried the service's system prompt; the SMS one also the budget.
    system_prompts = [
        request["messages"][0]["content"] for request in oracle.requests if request["messages"][0]["role"] == "system"
    ]
    assert len(system_prompts) == 3 * PROMPTS
    assert all(prompt.startswith(SYSTEM_PROMPT) for prompt in system_prompts)
    assert sum("70 аломат" in prompt for prompt in system_prompts) == PROMPTS


async def test_an_answerer_that_always_says_a_scores_chance(eval_data: Path, tmp_path: Path) -> None:
    async with OpenAIStandIn(lambda messages: "A") as constant:
        results = await _run(constant.base_url, eval_data, tmp_path)

    for task in MCQ_TASKS:
        result = results[task]
        assert result.chance is not None
        assert result.metric("accuracy").value == pytest.approx(result.chance), task
        assert result.metric("answered").value == 1.0
    assert results["sib200_tgk_Cyrl"].chance == pytest.approx(1 / 7)
    assert results["tajlib"].chance == pytest.approx(1 / 4)
    assert results["flores_tgk_Cyrl-eng_Latn"].headline.value < 5.0
    assert results["tajik_replies"].headline.value == 0.0


async def test_replies_that_pick_nothing_count_as_wrong_and_unanswered(eval_data: Path, tmp_path: Path) -> None:
    async with OpenAIStandIn(lambda messages: "Намедонам.") as unsure:
        results = await _run(unsure.base_url, eval_data, tmp_path)

    assert results["tajlib"].metric("accuracy").value == 0.0
    assert results["tajlib"].metric("answered").value == 0.0
    assert {item["prediction"] for item in results["tajlib"].items} == {None}


async def test_a_run_folder_holds_json_per_task_and_a_markdown_table(
    eval_data: Path, answer_key: AnswerKey, tmp_path: Path
) -> None:
    async with OpenAIStandIn(answer_key.oracle) as oracle:
        await _run(oracle.base_url, eval_data, tmp_path)

    run = json.loads((tmp_path / "run.json").read_text(encoding="utf-8"))
    assert run["backend"] == {"kind": "endpoint", "base_url": oracle.base_url, "model": "stand-in"}
    for task in run["tasks"]:
        if task == "latency":
            continue  # a bootstrap interval of a percentile need not contain the percentile itself
        data = json.loads((tmp_path / f"{task}.json").read_text(encoding="utf-8"))
        assert data["n"] == len(data["item_ids"]) > 0
        low, high = data["scores"][data["metrics"][0]["name"]]["ci95"]
        assert low <= data["scores"][data["metrics"][0]["name"]]["value"] <= high
    tajlib = json.loads((tmp_path / "tajlib.json").read_text(encoding="utf-8"))
    assert {item["group"] for item in tajlib["items"]} == {"grammar", "law", "literature"}
    table = (tmp_path / "results.md").read_text(encoding="utf-8")
    assert "| tajlib | accuracy | 1.000 |" in table
    assert "## talim by group" in table

    # results.json: one entry per task and metric, the file compare and the model card read.
    results = read_results(tmp_path)
    assert (results.name, results.model, results.backend, results.model_hash) == ("suite", "stand-in", "endpoint", None)
    assert results.date == run["finished_at"]
    tajlib_score = next(s for s in results.scores if (s.task, s.metric) == ("tajlib", "accuracy"))
    assert tajlib_score.value == 1.0 and tajlib_score.n == len(tajlib["item_ids"]) and tajlib_score.ci95 == (1.0, 1.0)
    assert {s.task for s in results.scores} == set(run["tasks"])
    for wrong in ("run.json", "tajlib.json"):
        with pytest.raises(ResultsError, match="not an evaluation results file"):
            read_results(tmp_path / wrong)


async def test_the_udhr_read_in_place_scores_100_chrf_for_its_own_reference(shared_data: Path, tmp_path: Path) -> None:
    rows = [
        json.loads(line) for line in (shared_data / "parallel" / "udhr_multiway.jsonl").read_text("utf-8").splitlines()
    ]
    english: dict[str, str] = {row["tg"]: row["en"] for row in rows if row.get("tg") and row.get("en")}

    def translator(messages: list[dict[str, str]]) -> str:
        prompt = messages[-1]["content"]
        return english[max((tg for tg in english if tg in prompt), key=len)]

    config = eval_config_from_dict(
        {
            "name": "udhr",
            "data_root": str(shared_data),
            "tasks": [
                {
                    "type": "translation",
                    "path": "parallel/udhr_multiway.jsonl",
                    "source": "tgk_Cyrl",
                    "target": "eng_Latn",
                }
            ],
        }
    )
    async with OpenAIStandIn(translator) as server:
        backend = Endpoint(server.base_url)
        outcome = await run_suite(config, backend, tmp_path, system_prompt=SYSTEM_PROMPT)
        await backend.aclose()
    (result,) = outcome.results
    assert len(result.item_ids) == len(english) == 51
    assert result.headline.value == pytest.approx(100.0)
