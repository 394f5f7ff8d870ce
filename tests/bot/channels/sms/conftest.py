"""The SMS channel in one test process: a real Kannel (bearerbox, smsbox, fakesmsc), the bot's HTTP server,
the delivery loop and the SMS dispatcher, on real Redis and SQL; workers on the real vLLM where a test asks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import select

from bot.channels.sms import CHANNEL, SmsChannel, sms_turn_options
from bot.delivery import DeliveryLoop
from bot.http import build_http_app
from bot.services import Services
from bot.store.models import InboundKey, Message, Request, Role
from inference.queue import ReplyEvent, ReplyKind
from inference.worker import Worker, llm_client
from soro.logs import QUIET_LOGGERS
from soro.metrics import WorkerMetrics
from soro.ports import free_port
from soro.settings import Settings
from tests.support.kannel import SERVICE_NUMBER, Kannel, KannelConfig, ReceivedSms
from tests.support.stack import eventually, stack_settings

NO_MODEL = "http://127.0.0.1:9/v1"


def new_number() -> str:
    return f"+99290{random.randrange(10**6, 10**7)}"


@dataclass
class SmsStack:
    settings: Settings
    services: Services
    channel: SmsChannel
    kannel: Kannel
    delivery: DeliveryLoop
    http: aiohttp.ClientSession
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    workers: list[tuple[Worker, asyncio.Task[None], asyncio.Event]] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.http_port}"

    async def answers(self, number: str, count: int = 1, within: float = 30) -> list[ReceivedSms]:
        """The SMS the phone got for ``number``, once it has at least ``count``."""
        await eventually(lambda: len(self.kannel.received(number)) >= count, within)
        return self.kannel.received(number)

    async def rows(self, model: type[Any]) -> list[Any]:
        async with self.services.sessions() as session:
            return list((await session.scalars(select(model).order_by(model.id))).all())

    async def user_texts(self) -> list[str]:
        return [m.text for m in await self.rows(Message) if m.role is Role.USER]

    async def open_request(self) -> Request:
        """The one turn waiting for a model answer (no worker runs in tests that publish answers)."""
        await eventually(self._has_requests, 15)
        async with self.services.sessions() as session:
            return (await session.scalars(select(Request))).one()

    async def _has_requests(self) -> bool:
        return bool(await self.rows(Request))

    async def seen(self) -> int:
        """How many distinct MO the bot has taken (each records its gateway id once)."""
        async with self.services.sessions() as session:
            return len((await session.scalars(select(InboundKey.key).where(InboundKey.channel == CHANNEL))).all())

    async def settle(self, mo_count: int, grace: float = 1.5) -> None:
        """Wait until the bot has taken ``mo_count`` MO, then long enough for any answer to reach the phone."""
        await eventually(lambda: self._seen_at_least(mo_count), 20)
        await asyncio.sleep(grace)

    async def _seen_at_least(self, count: int) -> bool:
        return await self.seen() >= count

    async def publish_answer(self, request: Request, text: str) -> None:
        """What a worker would write: the final answer of ``request``, into the SMS reply stream."""
        event = ReplyEvent(request.id, request.conversation_id, CHANNEL, ReplyKind.FINAL, text=text, model="test")
        await self.services.queue.publish(event, self.services.queue.names.replies(CHANNEL))

    def metric(self, name: str, labels: dict[str, str] | None = None) -> float:
        value = self.services.metrics.registry.get_sample_value(name, labels or {})
        return value or 0.0

    def start_worker(self) -> None:
        worker = Worker(self.settings, self.services.queue, llm_client(self.settings), WorkerMetrics())
        stop = asyncio.Event()
        self.workers.append((worker, asyncio.create_task(worker.run(stop)), stop))


@contextlib.asynccontextmanager
async def running_sms_stack(settings: Settings, kannel: Kannel, workers: int = 0) -> AsyncIterator[SmsStack]:
    services = Services.create(settings, {CHANNEL: sms_turn_options(settings)})
    channel = SmsChannel(settings, services)
    app = build_http_app(services.metrics.registry, {"database": services.check_database}, channel.routes())
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", settings.http_port).start()
        await kannel.start()
    except BaseException:  # a Kannel that cannot start fails its test alone, leaving no socket to the next
        await kannel.stop()
        await runner.cleanup()
        await services.close()
        raise
    stop = asyncio.Event()
    delivery = DeliveryLoop(settings, services.pipeline, services.queue, {CHANNEL: channel.sender}, services.metrics)
    stack = SmsStack(settings, services, channel, kannel, delivery, aiohttp.ClientSession())
    stack.tasks += [asyncio.create_task(delivery.run(stop)), asyncio.create_task(channel.run(stop))]
    for _ in range(workers):
        stack.start_worker()
    try:
        yield stack
    finally:
        for worker, task, worker_stop in stack.workers:
            worker_stop.set()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await worker.llm.close()
        stop.set()
        await asyncio.gather(*stack.tasks, return_exceptions=True)
        await kannel.stop()
        await stack.http.close()
        await runner.cleanup()
        keys = [key async for key in services.redis.scan_iter(f"{settings.stream_prefix}:*")]
        if keys:
            await services.redis.delete(*keys)
        await services.close()


SmsStackFactory = Callable[..., AbstractAsyncContextManager[SmsStack]]


@pytest.fixture
def make_sms_stack(sqlite_url: str, redis_url: str, tmp_path: Path) -> SmsStackFactory:
    """SMS stacks on a fresh SQLite database; ``database_url=`` / ``redis_url=`` run one on others."""

    def make(
        workers: int = 0,
        llm_base_url: str = NO_MODEL,
        llm_model: str = "soro",
        kannel_bot_url: str | None = None,
        kannel_http_timeout: int = 5,
        **overrides: Any,
    ) -> Any:
        """``kannel_bot_url``: where Kannel sends MO and reports, when not straight to the bot (a proxy)."""
        database_url = overrides.pop("database_url", sqlite_url)
        stack_redis_url = overrides.pop("redis_url", redis_url)
        port = overrides.pop("http_port", None) or free_port()
        bot_url = kannel_bot_url or f"http://127.0.0.1:{port}"
        secret = secrets.token_hex(16)
        workdir = tmp_path / f"kannel-{port}"
        kannel = Kannel(workdir, KannelConfig(bot_url=bot_url, secret=secret, http_timeout=kannel_http_timeout))
        values: dict[str, Any] = {
            "http_port": port,
            "sms_kannel_url": kannel.sendsms_url,
            "sms_kannel_username": kannel.config.username,
            "sms_kannel_password": kannel.config.password,
            "sms_sender": SERVICE_NUMBER,
            "sms_mo_secret": secret,
            "sms_dlr_base_url": bot_url,
            "sms_gateway_retry_max_seconds": 1.0,
        }
        values.update(overrides)
        settings = stack_settings(database_url, stack_redis_url, llm_base_url, llm_model, **values)
        return running_sms_stack(settings, kannel, workers)

    return make


@pytest.fixture
def private_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Every log line at every level, as a process set up by ``setup_logging`` at DEBUG would write them."""
    caplog.set_level(logging.DEBUG)
    for name in QUIET_LOGGERS:
        caplog.set_level(logging.WARNING, logger=name)
    return caplog


def assert_private(logs: str, secrets: list[str], numbers: list[str], texts: list[str]) -> None:
    """No secret, no whole phone number and no message text in the log lines."""
    for secret in secrets:
        assert secret not in logs, "a secret in the logs"
    for number in numbers:
        assert number[-9:] not in logs, f"the number …{number[-4:]} in the logs"
    words = {word for text in texts for word in text.split() if len(word) > 5}
    assert not [word for word in words if word in logs], "message text in the logs"


@pytest.fixture
async def sms_stack(make_sms_stack: SmsStackFactory) -> AsyncIterator[SmsStack]:
    async with make_sms_stack() as stack:
        yield stack


def secrets_of(stack: SmsStack) -> list[str]:
    return [stack.settings.sms_mo_secret.get_secret_value(), stack.settings.sms_kannel_password.get_secret_value()]
