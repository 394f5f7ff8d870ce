"""``bench/pipeline.py`` keeps working: a short run through the whole path against the session's real vLLM."""

from __future__ import annotations

import pytest

from bench.pipeline import main, parse_args
from tests.support.vllm import ServedModel

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


async def test_a_short_pipeline_benchmark_answers_every_question_on_both_sides(
    vllm_server: ServedModel, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    flags = "--concurrency 1 3 --requests 6 --max-tokens 8 --known-users 20 --returning".split()
    server = ["--llm-base-url", vllm_server.base_url, "--model", vllm_server.model, "--database-url", postgres_url]
    rows = await main(parse_args([*flags, *server]))
    assert [concurrency for concurrency, _, _ in rows] == [1, 3]
    for concurrency, direct, pipeline in rows:
        asked = 6 // concurrency * concurrency
        assert len(direct.latencies) == len(pipeline.latencies) == len(pipeline.accepts) == asked
        assert pipeline.requests == asked, "the worker's metrics count a request per question"
        assert 0 < direct.tokens <= asked * 8 and 0 < pipeline.tokens <= asked * 8
        # An answer's time holds its accept and the model call in the worker.
        assert 0 < pipeline.accept < pipeline.generation < max(pipeline.latencies)
        assert pipeline.worker_cpu > 0
    table = capsys.readouterr().out
    assert "| throughput ratio |" in table and "| worker CPU ms / request |" in table
