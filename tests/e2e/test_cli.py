"""The commands docker-compose runs, started as processes exactly as compose starts them.

``soro db upgrade``, ``soro worker`` and ``soro bot`` (polling against the Bot API stand-in), ``soro chat``
with piped input, and ``soro demo`` with a model server given by SORO_LLM_BASE_URL.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

from soro.ports import free_port
from tests.support.processes import SORO, run, soro_env
from tests.support.telegram_api import BotApiStandIn, text_update
from tests.support.vllm import ServedModel

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


async def test_db_upgrade_creates_the_schema_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    code, out = await run("db", "upgrade", env=soro_env(database_url=url))
    assert code == 0, out
    engine = create_async_engine(url)
    async with engine.connect() as connection:
        tables = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
    await engine.dispose()
    assert {"users", "conversations", "messages", "requests", "inbound_keys"} <= set(tables)


async def test_bot_and_worker_processes_answer_a_telegram_user(services_env: dict[str, str]) -> None:
    api = BotApiStandIn()
    await api.start()
    env = {**services_env, "SORO_TELEGRAM_TOKEN": api.token, "SORO_TELEGRAM_API_BASE": api.base}
    processes = [
        await asyncio.create_subprocess_exec(*SORO, verb, env=env, stdout=asyncio.subprocess.DEVNULL)
        for verb in ("worker", "bot")
    ]
    try:
        api.feed(text_update(1, 4242, "Салом! Шумо кистед?"))
        await api.wait_for(lambda: len(api.sent("sendMessage", 4242)) >= 1, timeout=90)
        assert api.sent("deleteWebhook"), "polling mode starts by removing any webhook"
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        codes = [await asyncio.wait_for(process.wait(), 60) for process in processes]
        await api.stop()
    assert codes == [0, 0], "worker and bot stop cleanly on SIGTERM"


async def test_chat_answers_piped_lines_through_a_worker(services_env: dict[str, str]) -> None:
    worker = await asyncio.create_subprocess_exec(*SORO, "worker", env=services_env, stdout=asyncio.subprocess.DEVNULL)
    try:
        code, out = await run("chat", env=services_env, stdin="Салом\n/help\n".encode())
    finally:
        worker.send_signal(signal.SIGTERM)
        await worker.wait()
    assert code == 0, out
    replies = [line for line in out.splitlines() if line.startswith("Соро: ")]
    assert len(replies) >= 2, out
    assert "/new" in out  # the help text


async def test_demo_answers_piped_input_and_exits(vllm_server: ServedModel, tmp_path: Path) -> None:
    # No Redis answers at the configured URL, so the demo starts a private redis-server of its own.
    env = soro_env(
        llm_base_url=vllm_server.base_url,
        llm_model=vllm_server.model,
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
        cache_dir=str(tmp_path),
    )
    code, out = await run("demo", env=env, stdin="Салом\n".encode(), timeout=180)
    assert code == 0, out
    assert "private Redis" in out
    assert any(line.startswith("Соро: ") and len(line) > len("Соро: ") for line in out.splitlines()), out
    assert (tmp_path / "demo.db").is_file()
