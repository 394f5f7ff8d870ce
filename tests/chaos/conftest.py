"""Fixtures of the chaos suite: one stack per scenario on the test's own database and the session's vLLM,
and the table of every scenario's figures at the end of the run."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest

from tests.chaos.harness import ChaosStack, Row, chaos_stack, table
from tests.support.vllm import ServedModel

ROWS: list[Row] = []

StackFactory = Callable[..., AbstractAsyncContextManager[ChaosStack]]


@pytest.fixture
def make_chaos_stack(postgres_url: str, vllm_server: ServedModel, tmp_path: Path) -> StackFactory:
    def make(**settings: str) -> AbstractAsyncContextManager[ChaosStack]:
        return chaos_stack(tmp_path, postgres_url, vllm_server, **settings)

    return make


@pytest.fixture
async def stack(make_chaos_stack: StackFactory) -> AsyncIterator[ChaosStack]:
    async with make_chaos_stack() as running:
        yield running


@pytest.fixture
def rows() -> list[Row]:
    return ROWS


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if ROWS:
        terminalreporter.section("chaos: what the users saw")
        terminalreporter.write_line(table(ROWS))
