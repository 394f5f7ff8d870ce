"""Every task on the tiny Gemma 3: as a local model folder (transformers) and served by a real vLLM (CPU)."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support.vllm import ServedModel
from tests.training.eval.conftest import MCQ_TASKS, TEST_SYSTEM_PROMPT, suite_config, suite_dict
from training.eval.runner import RunOutcome, run_suite

if TYPE_CHECKING:
    from training.eval.backends.local import LocalModel

pytestmark = pytest.mark.shared_data

MCQ_TYPES = {"belebele", "sib200", "tajlib", "talim", "english_mcq"}
TASKS = {
    *MCQ_TASKS,
    "flores_tgk_Cyrl-eng_Latn",
    "flores_rus_Cyrl-tgk_Cyrl",
    "bpc_tajik",
    "tajik_replies",
    "sms_budget",
    "latency",
}


def _check_scores(outcome: RunOutcome, *, timed: bool) -> None:
    results = {result.task: result for result in outcome.results}
    assert set(results) == (TASKS if timed else TASKS - {"latency"})
    for task in MCQ_TASKS:
        assert 0.0 <= results[task].headline.value <= 1.0
        assert len(results[task].items) == len(results[task].item_ids) > 0
    for task in ("flores_tgk_Cyrl-eng_Latn", "flores_rus_Cyrl-tgk_Cyrl"):
        assert 0.0 <= results[task].headline.value < 100.0  # a random model does not translate
    bits = results["bpc_tajik"].headline.value
    # A random model over a 512-token vocabulary spends about log2(512) = 9 bits per token.
    tokens_per_char = results["bpc_tajik"].metric("tokens_per_char").value
    assert bits == pytest.approx(9 * tokens_per_char, rel=0.25)
    # The tiny model has random weights: whatever letters it strings together, none of its replies is Tajik.
    assert results["tajik_replies"].headline.value == 0.0, results["tajik_replies"].items
    if timed:
        assert outcome.skipped == {}
        assert results["latency"].metric("latency_p90_s").value >= results["latency"].metric("latency_p50_s").value > 0


@pytest.mark.train
def test_every_task_runs_on_a_local_model_folder(local_run: RunOutcome) -> None:
    _check_scores(local_run, timed=False)
    # A local model generates in batches: no per-request time exists, so latency is not reported at all.
    assert set(local_run.skipped) == {"latency"} and "per streamed request" in local_run.skipped["latency"]
    results = {result.task: result for result in local_run.results}
    assert not any("seconds" in item for item in results["tajik_replies"].items)
    # results.json names the weights it measured by their hash.
    from training.eval.results import model_hash, read_results

    saved = read_results(local_run.out_dir)
    assert saved.backend == "local" and saved.model_hash == model_hash(Path(saved.model)) is not None
    for task in MCQ_TASKS:
        assert results[task].scoring == "loglikelihood"
        for item in results[task].items:
            # The pick is the letter the model finds most likely.
            scores = item["loglikelihoods"]
            assert item["prediction"] == "ABCDEFG"[scores.index(max(scores))]


@pytest.mark.train
async def test_a_local_model_can_answer_multiple_choice_by_generation(
    local_model: LocalModel, eval_data: Path, tmp_path: Path
) -> None:
    config = replace(suite_config(eval_data, "tiny-generation"), scoring="generation")
    config = replace(config, tasks=[task for task in config.tasks if task.name in ("tajlib", "mmlu")])
    outcome = await run_suite(config, local_model, tmp_path, system_prompt=TEST_SYSTEM_PROMPT)
    for result in outcome.results:
        assert result.scoring == "generation"
        assert {"accuracy", "answered"} == {metric.name for metric in result.metrics}
        assert all("reply" in item for item in result.items)


@pytest.mark.slow
def test_every_task_runs_on_a_real_vllm_endpoint(vllm_run: RunOutcome, vllm_server: ServedModel) -> None:
    _check_scores(vllm_run, timed=True)
    results = {result.task: result for result in vllm_run.results}
    assert all(results[task].scoring == "generation" for task in MCQ_TASKS)
    first_token = results["latency"].metric("first_token_p50_s").value
    assert 0 < first_token <= results["latency"].metric("latency_p50_s").value


@pytest.mark.slow
@pytest.mark.train
def test_bits_per_character_agree_between_the_model_folder_and_vllm(
    local_run: RunOutcome, vllm_run: RunOutcome
) -> None:
    """The same weights give the same bits per character in-process and through vLLM's prompt log-probabilities."""
    local = next(result for result in local_run.results if result.task == "bpc_tajik")
    served = next(result for result in vllm_run.results if result.task == "bpc_tajik")
    assert local.item_ids == served.item_ids
    assert served.metric("tokens_per_char").value == local.metric("tokens_per_char").value
    assert math.isclose(served.headline.value, local.headline.value, rel_tol=0.01)


@pytest.mark.slow
@pytest.mark.train
async def test_local_and_served_backends_score_the_same_items_the_same_way(
    local_model: LocalModel, vllm_server: ServedModel, eval_data: Path, shared_data: Path, tmp_path: Path
) -> None:
    """One suite, log-likelihood scoring, on the model folder and on vLLM serving it: the same numbers.

    The held-out passages here run to 3,000 characters, far past the 512-token window of the tiny model (its
    max_position_embeddings, and the served max_model_len): both backends score them in the same windows.
    """
    from training.eval.backends.endpoint import Endpoint
    from training.eval.config import eval_config_from_dict

    long_text = tmp_path / "long"
    long_text.mkdir()
    (long_text / "udhr_tg.txt").write_text((shared_data / "langid" / "udhr_tg.txt").read_text("utf-8"), "utf-8")
    raw = suite_dict(eval_data, "same-way")
    raw["scoring"] = "loglikelihood"
    raw["tasks"] = [task for task in raw["tasks"] if task["type"] in MCQ_TYPES] + [
        {"type": "bpc", "name": "bpc_long", "paths": [str(long_text / "*.txt")], "max_chars": 3000}
    ]
    config = eval_config_from_dict(raw)
    local = await run_suite(config, local_model, tmp_path / "local", system_prompt=TEST_SYSTEM_PROMPT)
    endpoint = Endpoint(vllm_server.base_url, model=vllm_server.model, concurrency=8)
    try:
        served = await run_suite(config, endpoint, tmp_path / "served", system_prompt=TEST_SYSTEM_PROMPT)
    finally:
        await endpoint.aclose()
    assert local.skipped == served.skipped == {}
    assert endpoint.window == local_model.window == 512
    by_task = {result.task: result for result in served.results}
    for result in local.results:
        other = by_task[result.task]
        assert other.item_ids == result.item_ids and other.scoring == result.scoring == "loglikelihood"
        if result.task == "bpc_long":
            assert max(item["tokens"] for item in result.items) > 512  # longer than the window
            assert other.metric("tokens_per_char").value == result.metric("tokens_per_char").value
            assert math.isclose(other.headline.value, result.headline.value, rel_tol=0.01)
            continue
        # Same accuracy; picks may differ only where two letters are tied within float noise.
        assert other.headline.value == pytest.approx(result.headline.value, abs=1.0 / len(result.item_ids) + 1e-9)
        for mine, theirs in zip(result.items, other.items, strict=True):
            assert mine["loglikelihoods"] == pytest.approx(theirs["loglikelihoods"], abs=2e-3)
