"""The serving stack in one test process: bot (webhook + delivery) and workers, on real PostgreSQL, Redis and vLLM.

Only Telegram's cloud is replaced, by ``BotApiStandIn``. Workers run in-process so a test can kill one the way a
crash would (its task is cancelled: no ack, no more heartbeats), or as ``soro worker`` subprocesses.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiogram import Bot
from aiohttp import web
from sqlalchemy import select

from bot.app import telegram_bot, telegram_dispatcher
from bot.channels.telegram.previews import PreviewPolicy
from bot.channels.telegram.sender import TelegramSender
from bot.delivery import DeliveryLoop
from bot.http import WEBHOOK_PATH, build_http_app, telegram_webhook
from bot.routing import served_models
from bot.services import Services
from bot.store.models import Conversation, Message, Request, User
from inference.queue import TurnRequest
from inference.worker import Worker, candidate_clients, llm_client
from soro.metrics import WorkerMetrics
from soro.ports import free_port
from soro.settings import Settings
from tests.support.proxy import LinkShape, TcpProxy
from tests.support.telegram_api import BotApiStandIn

WEBHOOK_SECRET = "test-secret-token"


def stack_settings(database_url: str, redis_url: str, llm_base_url: str, llm_model: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "redis_url": redis_url,
        "stream_prefix": f"test-{uuid.uuid4().hex[:10]}",
        "llm_base_url": llm_base_url,
        "llm_model": llm_model,
        "llm_max_tokens": 160,
        "telegram_token": "123456:TEST",
        "webhook_url": "http://127.0.0.1",
        "webhook_secret": WEBHOOK_SECRET,
        "visibility_timeout_seconds": 3.0,
        "request_deadline_seconds": 60.0,
        "partial_interval_seconds": 0.1,
        "partial_min_chars": 8,
        "worker_concurrency": 16,
        "telegram_chat_rate": 50.0,
        "user_messages_per_minute": 1000,
        "http_port": free_port(),
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@dataclass
class RunningWorker:
    worker: Worker
    task: asyncio.Task[None]
    stop: asyncio.Event


@dataclass
class Stack:
    settings: Settings
    api: BotApiStandIn
    services: Services
    bot: Bot
    sender: TelegramSender
    delivery_stop: asyncio.Event
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    workers: list[RunningWorker] = field(default_factory=list)
    runner: web.AppRunner | None = None
    http: aiohttp.ClientSession | None = None
    api_link: TcpProxy | None = None  # between the bot and the stand-in, when the link is shaped
    started: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def webhook(self) -> str:
        return f"http://127.0.0.1:{self.settings.http_port}{WEBHOOK_PATH}"

    async def post_update(self, update: dict[str, Any], secret: str = WEBHOOK_SECRET) -> int:
        assert self.http is not None
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret}
        async with self.http.post(self.webhook, json=update, headers=headers) as response:
            return response.status

    def start_worker(self, **overrides: Any) -> RunningWorker:
        settings = self.settings.model_copy(update=overrides)
        worker = Worker(
            settings, self.services.queue, llm_client(settings), WorkerMetrics(), clients=candidate_clients(settings)
        )
        stop = asyncio.Event()
        running = RunningWorker(worker, asyncio.create_task(worker.run(stop)), stop)
        self.workers.append(running)
        return running

    async def kill_worker(self, running: RunningWorker) -> None:
        """As a crash would: everything it was doing stops, nothing is acked."""
        # The stop flag too: after one failed test a cancelled worker was seen to keep reading (not reproduced
        # since, in 20 cancels at random points); with the flag its loop ends even then.
        running.stop.set()
        for task in list(running.worker.inflight.values()):
            task.cancel()
        running.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running.task
        await _close_clients(running.worker)
        self.workers.remove(running)

    async def stop_worker(self, running: RunningWorker) -> None:
        running.stop.set()
        await running.task
        await _close_clients(running.worker)
        self.workers.remove(running)

    async def request_rows(self, address: int | str | None = None) -> list[Request]:
        """Requests of the chat ``address`` (or of every chat this stack's users opened), oldest first."""
        async with self.services.sessions() as session:
            query = select(Request).join(Conversation).join(User).where(User.created_at >= self.started)
            if address is not None:
                query = query.where(User.address == str(address))
            return list((await session.scalars(query.order_by(Request.received_at))).all())

    async def messages(self, address: int | str) -> list[Message]:
        async with self.services.sessions() as session:
            query = select(Message).join(Conversation).join(User).where(User.address == str(address))
            return list(
                (await session.scalars(query.where(User.created_at >= self.started).order_by(Message.id))).all()
            )


async def _close_clients(worker: Worker) -> None:
    for client in (worker.llm, *worker.clients.values()):
        await client.close()


async def queued(services: Services) -> list[TurnRequest]:
    """The turns in the requests stream, oldest first."""
    entries = await services.redis.xrange(services.queue.names.requests)
    return [TurnRequest.from_json(fields[b"data"]) for _, fields in entries]


async def eventually(
    check: Callable[[], Awaitable[bool] | bool], timeout: float = 60.0, interval: float = 0.1, what: str = "condition"
) -> None:
    """Wait until ``check()`` is true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout

    async def holds() -> bool:
        result = check()
        return bool(await result) if inspect.isawaitable(result) else bool(result)

    while not await holds():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:.0f}s for: {what}")
        await asyncio.sleep(interval)


@contextlib.asynccontextmanager
async def running_stack(
    settings: Settings,
    workers: int = 1,
    preview_policy: PreviewPolicy | None = None,
    api_link: LinkShape | None = None,
) -> AsyncIterator[Stack]:
    """The stack; with ``api_link``, the bot reaches the Bot API stand-in through a link of that shape."""
    api = BotApiStandIn(settings.telegram_token.get_secret_value())
    await api.start()
    link = TcpProxy("127.0.0.1", api.port, api_link) if api_link is not None else None
    if link is not None:
        await link.start()
    settings = settings.model_copy(update={"telegram_api_base": link.url if link is not None else api.base})
    services = Services.create(settings)
    services.metrics.prime(channels=["telegram"], models=served_models(settings))  # as run_bot does
    bot, sender = telegram_bot(settings, services)
    if preview_policy is not None:
        sender.policy = preview_policy
    dispatcher = telegram_dispatcher(services)
    app = build_http_app(
        services.metrics.registry,
        {"database": services.check_database, "redis": services.check_redis},
        [telegram_webhook(dispatcher, bot, settings.webhook_secret.get_secret_value(), services.pipeline)],
    )
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", settings.http_port).start()
    stop = asyncio.Event()
    stack = Stack(
        settings, api, services, bot, sender, stop, runner=runner, http=aiohttp.ClientSession(), api_link=link
    )
    delivery = DeliveryLoop(settings, services.pipeline, services.queue, {"telegram": sender}, services.metrics)
    stack.tasks.append(asyncio.create_task(delivery.run(stop)))
    for _ in range(workers):
        stack.start_worker()
    try:
        yield stack
    finally:
        for running in list(stack.workers):
            await stack.kill_worker(running)
        stop.set()
        await asyncio.gather(*stack.tasks, return_exceptions=True)
        await stack.http.close()  # type: ignore[union-attr]
        await runner.cleanup()
        await bot.session.close()
        prefix = settings.stream_prefix
        keys = [key async for key in services.redis.scan_iter(f"{prefix}:*")]
        if keys:
            await services.redis.delete(*keys)
        await services.close()
        if link is not None:
            await link.stop()
        await api.stop()
