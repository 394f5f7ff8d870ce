"""Delivery when the bot dies at the worst moment: after Telegram took the answer, before SQL recorded it.

Real PostgreSQL and Redis, the Bot API stand-in; the crash is the first sender stopping between its two steps.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from bot.app import telegram_bot
from bot.channels.telegram.sender import TelegramSender
from bot.delivery import DeliveryLoop
from bot.pipeline import Inbound, Outcome
from bot.services import Services
from bot.store.models import InboundKey, Request, RequestState, utcnow
from inference.queue import DELIVERY_GROUP, ReplyEvent, ReplyKind
from tests.support.redis_server import PrivateRedis
from tests.support.stack import Stack, queued, running_stack, stack_settings
from tests.support.telegram_api import BotApiStandIn, text_update

CHAT = 9101


@pytest.fixture
async def stack(postgres_url: str, redis_url: str) -> AsyncIterator[Stack]:
    settings = stack_settings(postgres_url, redis_url, "http://127.0.0.1:9/v1", "soro")
    async with running_stack(settings, workers=0) as running:
        yield running


def delivery_process(services: Services, sender: TelegramSender) -> DeliveryLoop:
    """A bot process's delivery loop (its consumer name is this host and port: the same after a restart)."""
    return DeliveryLoop(services.settings, services.pipeline, services.queue, {"telegram": sender}, services.metrics)


@dataclass
class BotSide:
    """The bot's services and Telegram sender, answering into a Bot API stand-in: no webhook, no loops."""

    services: Services
    sender: TelegramSender
    api: BotApiStandIn


@contextlib.asynccontextmanager
async def bot_side(postgres_url: str, redis_url: str) -> AsyncIterator[BotSide]:
    settings = stack_settings(postgres_url, redis_url, "http://127.0.0.1:9/v1", "soro")
    api = BotApiStandIn(settings.telegram_token.get_secret_value())
    await api.start()
    settings = settings.model_copy(update={"telegram_api_base": api.base})
    services = Services.create(settings)
    bot, sender = telegram_bot(settings, services)
    try:
        yield BotSide(services, sender, api)
    finally:
        await bot.session.close()
        await services.close()
        await api.stop()


async def test_an_answer_sent_by_a_bot_that_died_before_recording_it_is_recorded_not_sent_again(
    stack: Stack,
) -> None:
    assert await stack.post_update(text_update(1, CHAT, "Салом! Пойтахти Тоҷикистон кадом шаҳр аст?")) == 200
    [request] = await stack.request_rows(CHAT)
    answer = "Пойтахти Тоҷикистон шаҳри Душанбе аст."
    event = ReplyEvent(request.id, request.conversation_id, "telegram", ReplyKind.FINAL, text=answer)

    doomed = delivery_process(stack.services, stack.sender)
    target = await stack.services.pipeline.claim_final(request.id, doomed.lease_seconds)
    assert target is not None
    await doomed._send(stack.sender, target, answer)  # on the user's screen; then kill -9, nothing recorded
    assert len(stack.api.sent("sendMessage", CHAT)) == 1

    restarted = delivery_process(stack.services, stack.sender)
    restarted.lease_seconds = 0.0  # the dead sender's lease has run out
    await restarted._handle(None, None, event)

    assert len(stack.api.sent("sendMessage", CHAT)) == 1, "the answer went out twice"
    [request] = await stack.request_rows(CHAT)
    assert request.state is RequestState.ANSWERED
    assert [m.text for m in await stack.messages(CHAT)][-1] == answer


async def test_a_restarted_bot_delivers_what_it_had_claimed_at_once_not_after_the_lease(
    postgres_url: str, redis_url: str
) -> None:
    stop = asyncio.Event()
    async with bot_side(postgres_url, redis_url) as side:
        services, api = side.services, side.api
        accepted = await services.pipeline.accept(Inbound("telegram", str(CHAT), "Салом!", "u-1"))
        assert accepted.request_id is not None
        [turn] = await queued(services)
        event = ReplyEvent(turn.request_id, turn.conversation_id, "telegram", ReplyKind.FINAL, text="Салом, дӯстам!")
        await services.queue.ensure_group(turn.reply_stream, DELIVERY_GROUP)
        await services.queue.publish(event, turn.reply_stream)

        doomed = delivery_process(services, side.sender)
        [(_, read)] = await services.queue.read_replies(turn.reply_stream, doomed.consumer, 10, block_ms=1000)
        assert read is not None and await services.pipeline.claim_final(read.request_id) is not None
        # kill -9 here: the event is pending for this consumer, the claim held, nothing sent.

        restarted = delivery_process(services, side.sender)
        assert restarted.consumer == doomed.consumer, "a restarted bot is the same consumer"
        started = time.monotonic()
        running = asyncio.create_task(restarted.run(stop))
        try:
            await api.wait_for(lambda: len(api.sent("sendMessage", CHAT)) >= 1, timeout=30)
            assert time.monotonic() - started < restarted.lease_seconds / 4
            await asyncio.sleep(1)
            assert len(api.sent("sendMessage", CHAT)) == 1
        finally:
            stop.set()
            await running


async def test_a_final_caught_by_a_redis_outage_after_its_claim_goes_out_when_redis_is_back(
    postgres_url: str, tmp_path: Path
) -> None:
    redis = PrivateRedis(tmp_path / "redis")
    await redis.start()
    try:
        async with bot_side(postgres_url, redis.url) as side:
            services, api = side.services, side.api
            accepted = await services.pipeline.accept(Inbound("telegram", str(CHAT), "Салом!", "u-2"))
            [turn] = await queued(services)
            assert accepted.request_id == turn.request_id
            event = ReplyEvent(
                turn.request_id, turn.conversation_id, "telegram", ReplyKind.FINAL, text="Салом, дӯстам!"
            )
            loop = delivery_process(services, side.sender)

            await redis.kill()  # the claim is taken in SQL; the sent-mark lookup after it meets a dead Redis
            started = time.monotonic()
            delivering = asyncio.create_task(loop._handle(None, None, event))
            await asyncio.sleep(1.5)
            await redis.start()
            await asyncio.wait_for(delivering, timeout=30)

            assert len(api.sent("sendMessage", CHAT)) == 1, "the answer went out once Redis was back"
            assert time.monotonic() - started < loop.lease_seconds / 4, "not after the claim's lease"
            async with services.sessions() as session:
                request = await session.get(Request, turn.request_id)
            assert request is not None and request.state is RequestState.ANSWERED
    finally:
        await redis.stop()


async def test_housekeeping_forgets_update_ids_past_their_retention_and_still_knows_recent_ones(
    services: Services,
) -> None:
    pipeline = services.pipeline
    for chat in ("5101", "5102", "5103"):
        accepted = await pipeline.accept(Inbound("telegram", chat, "Салом", f"update-{chat}"))
        assert accepted.outcome is Outcome.QUEUED
    eight_days_ago = utcnow() - timedelta(days=8)  # the retention is seven
    async with pipeline.engine.begin() as connection:
        await connection.execute(
            update(InboundKey).where(InboundKey.key != "update-5103").values(seen_at=eight_days_ago)
        )

    async def keys() -> set[str]:
        async with services.sessions() as session:
            return set(await session.scalars(select(InboundKey.key)))

    housekeeping = DeliveryLoop(services.settings, pipeline, services.queue, {}, services.metrics)
    await housekeeping._sweep()
    assert await keys() == {"update-5103"}
    # Telegram delivering the recent update again is still told apart from a new one.
    again = await pipeline.accept(Inbound("telegram", "5103", "Салом", "update-5103"))
    assert again.outcome is Outcome.DUPLICATE
    # Later sweeps within the hour leave the keys alone; pruning goes in batches, however many are due.
    async with pipeline.engine.begin() as connection:
        await connection.execute(update(InboundKey).values(seen_at=eight_days_ago))
    await housekeeping._sweep()
    assert await keys() == {"update-5103"}
    assert await pipeline.prune_keys(batch=1) == 1 and await keys() == set()
