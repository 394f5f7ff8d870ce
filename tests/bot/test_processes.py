"""``soro bot --processes 2`` behind one port: both accept, and every user gets exactly one final answer even when
the worker writes each final reply twice (as a regenerating worker does)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import aiohttp
import pytest
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from bench.accept import cpu_seconds, process_tree
from bot.store.models import Request, RequestState
from inference.queue import ReplyEvent, RequestQueue, StreamNames
from inference.worker import Worker, llm_client
from soro.metrics import WorkerMetrics
from soro.ports import free_port
from tests.support.stack import WEBHOOK_SECRET, eventually, stack_settings
from tests.support.telegram_api import BotApiStandIn, text_update
from tests.support.vllm import ServedModel

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

SORO = str(Path(sys.executable).with_name("soro"))
CHATS = [3000 + i for i in range(24)]


class TwiceQueue(RequestQueue):
    """Every final reply event is written twice, as a worker that regenerates a request writes it again."""

    async def publish_many(self, replies: Sequence[tuple[ReplyEvent, str, str | None]]) -> list[BaseException | None]:
        outcomes = await super().publish_many(replies)
        for event, stream, _ in replies:
            if event.kind.is_final:
                await super().publish(event, stream)
        return outcomes


async def test_two_processes_on_one_port_accept_and_answer_each_user_once(
    postgres_url: str, redis_url: str, vllm_server: ServedModel, api: BotApiStandIn
) -> None:
    settings = stack_settings(
        postgres_url, redis_url, vllm_server.base_url, vllm_server.model, telegram_api_base=api.base, llm_max_tokens=24
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SORO_")}
    for name in (
        "database_url",
        "redis_url",
        "stream_prefix",
        "telegram_api_base",
        "webhook_url",
        "http_port",
        "user_messages_per_minute",
        "llm_model",  # turns name the model they are for
        "llm_max_tokens",
    ):
        env[f"SORO_{name.upper()}"] = str(getattr(settings, name))
    env["SORO_TELEGRAM_TOKEN"] = api.token
    env["SORO_WEBHOOK_SECRET"] = WEBHOOK_SECRET
    env["SORO_WORKER_METRICS_PORT"] = str(free_port())
    bot = await asyncio.create_subprocess_exec(SORO, "bot", "--processes", "2", env=env)
    redis = Redis.from_url(redis_url)
    queue = TwiceQueue(redis, StreamNames(settings.stream_prefix))
    worker = Worker(settings, queue, llm_client(settings), WorkerMetrics())
    stop = asyncio.Event()
    working = asyncio.create_task(worker.run(stop))
    url = f"http://127.0.0.1:{settings.http_port}"
    try:
        async with aiohttp.ClientSession() as http:

            async def healthy() -> bool:
                try:
                    async with http.get(f"{url}/healthz") as response:
                        return response.status == 200 and len(process_tree(bot.pid)) == 3
                except aiohttp.ClientError:
                    return False

            await eventually(healthy, timeout=60, what="two bot processes serving")
            await api.wait_for(lambda: bool(api.sent("setWebhook")), timeout=30)
            children = process_tree(bot.pid)[1:]
            busy_before = [cpu_seconds([pid]) for pid in children]

            async def post(update_id: int, chat: int) -> int:
                # A connection per update, as Telegram opens them: the kernel spreads connections, not requests.
                async with aiohttp.ClientSession() as own:
                    headers = {"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET}
                    async with own.post(
                        f"{url}/telegram/webhook", json=text_update(update_id, chat, "Салом!"), headers=headers
                    ) as response:
                        return response.status

            statuses = await asyncio.gather(*(post(i + 1, chat) for i, chat in enumerate(CHATS)))
            assert statuses == [200] * len(CHATS)
            busy_after = [cpu_seconds([pid]) for pid in children]
            assert all(after > before for before, after in zip(busy_before, busy_after, strict=True)), (
                "both processes took updates"
            )

        await api.wait_for(lambda: all(api.sent("sendMessage", chat) for chat in CHATS), timeout=120)
        engine = create_async_engine(postgres_url)
        try:

            async def all_answered() -> bool:
                async with engine.connect() as connection:
                    states = (await connection.execute(select(Request.state))).scalars().all()
                return len(states) == len(CHATS) and all(state is RequestState.ANSWERED for state in states)

            await eventually(all_answered, timeout=30, what="every request recorded as answered")
        finally:
            await engine.dispose()
        await asyncio.sleep(2.0)  # time for a second copy of a final answer to go out, were it to
        assert {chat: len(api.sent("sendMessage", chat)) for chat in CHATS} == dict.fromkeys(CHATS, 1)
    finally:
        stop.set()
        await working
        await worker.llm.close()
        bot.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(bot.wait(), 60)
        keys = [key async for key in redis.scan_iter(f"{settings.stream_prefix}:*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
    assert code == 0, "the bot processes stop cleanly on SIGTERM"
