"""The vLLM dashboard against the vLLM we serve: a real Prometheus scrapes the test session's vLLM (CPU) while it
answers chat completions, and every panel of the dashboard must show data."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from openai import AsyncOpenAI

from tests.support.prometheus import (
    DASHBOARDS_DIR,
    Prometheus,
    assert_expressions_work,
    dashboard_expressions,
    running_prometheus,
)
from tests.support.vllm import ServedModel

pytestmark = pytest.mark.slow


async def chat_until(prometheus: Prometheus, client: AsyncOpenAI, model: str, expr: str, timeout: float) -> None:
    """Keep vLLM busy with short chats until ``expr`` has data (rates need two scrapes with traffic between)."""
    deadline = time.monotonic() + timeout
    while not [s for s in prometheus.query(expr) if s.value > 0]:
        assert time.monotonic() < deadline, f"{expr!r} got no data in {timeout:.0f} s"
        await client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "Салом! Ҳол чӣ тавр?"}], max_tokens=12
        )
        await asyncio.sleep(0.1)


async def test_every_vllm_panel_shows_data_from_a_real_vllm(vllm_server: ServedModel, tmp_path: Path) -> None:
    host = f"127.0.0.1:{vllm_server.port}"
    client = AsyncOpenAI(base_url=vllm_server.base_url, api_key="EMPTY")
    try:
        with running_prometheus({"vllm": [host]}, tmp_path / "prometheus", rule_files=[]) as prometheus:
            prometheus.wait_until('up{job="vllm"} == 1')
            await chat_until(prometheus, client, vllm_server.model, "sum(rate(vllm:generation_tokens_total[1m]))", 60)
            expressions = dashboard_expressions(DASHBOARDS_DIR / "vllm.json")
            outcomes = assert_expressions_work(prometheus, expressions, expect_data=lambda e: True)
    finally:
        await client.close()
    assert len(outcomes) == len(expressions) > 20
