"""Delivery when the bot dies at the worst moment: after Telegram took the answer, before SQL recorded it.

Real PostgreSQL and Redis, the Bot API stand-in; the crash is the first sender stopping between its two steps.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.app import telegram_bot
from bot.delivery import DeliveryLoop
from bot.pipeline import Inbound
from bot.services import Services
from bot.store.models import Request, RequestState
from inference.queue import DELIVERY_GROUP, ReplyEvent, ReplyKind, TurnRequest
from tests.support.redis_server import PrivateRedis
from tests.support.stack import Stack, queued, running_stack, stack_settings
from tests.support.telegram_api import BotApiStandIn, text_update

CHAT = 9101


@pytest.fixture
async def stack(postgres_url: str, redis_url: str) -> AsyncIterator[Stack]:
    settings = stack_settings(postgres_url, redis_url, "http://127.0.0.1:9/v1", "soro")
    async with running_stack(settings, workers=0) as running:
        yield running


def delivery_process(stack: Stack) -> DeliveryLoop:
    services = stack.services
    return DeliveryLoop(
        services.settings, services.pipeline, services.queue, {"telegram": stack.sender}, services.metrics
    )


async def test_an_answer_sent_by_a_bot_that_died_before_recording_it_is_recorded_not_sent_again(
    stack: Stack,
) -> None:
    assert await stack.post_update(text_update(1, CHAT, "Салом! Пойтахти Тоҷикистон кадом шаҳр аст?")) == 200
    [request] = await stack.request_rows(CHAT)
    answer = "Пойтахти Тоҷикистон шаҳри Душанбе аст."
    event = ReplyEvent(request.id, request.conversation_id, "telegram", ReplyKind.FINAL, text=answer)

    doomed = delivery_process(stack)
    target = await stack.services.pipeline.claim_final(request.id, doomed.lease_seconds)
    assert target is not None
    await doomed._send(stack.sender, target, answer)  # on the user's screen; then kill -9, nothing recorded
    assert len(stack.api.sent("sendMessage", CHAT)) == 1

    restarted = delivery_process(stack)
    restarted.lease_seconds = 0.0  # the dead sender's lease has run out
    await restarted._handle(None, None, event)

    assert len(stack.api.sent("sendMessage", CHAT)) == 1, "the answer went out twice"
    [request] = await stack.request_rows(CHAT)
    assert request.state is RequestState.ANSWERED
    assert [m.text for m in await stack.messages(CHAT)][-1] == answer


async def test_a_restarted_bot_delivers_what_it_had_claimed_at_once_not_after_the_lease(
    postgres_url: str, redis_url: str
) -> None:
    settings = stack_settings(postgres_url, redis_url, "http://127.0.0.1:9/v1", "soro")
    api = BotApiStandIn(settings.telegram_token.get_secret_value())
    await api.start()
    settings = settings.model_copy(update={"telegram_api_base": api.base})
    services = Services.create(settings)
    bot, sender = telegram_bot(settings, services)
    stop = asyncio.Event()
    try:
        accepted = await services.pipeline.accept(Inbound("telegram", str(CHAT), "Салом!", "u-1"))
        assert accepted.request_id is not None
        [turn] = [
            TurnRequest.from_json(f[b"data"]) for _, f in await services.redis.xrange(services.queue.names.requests)
        ]
        event = ReplyEvent(turn.request_id, turn.conversation_id, "telegram", ReplyKind.FINAL, text="Салом, дӯстам!")
        await services.queue.ensure_group(turn.reply_stream, DELIVERY_GROUP)
        await services.queue.publish(event, turn.reply_stream)

        doomed = DeliveryLoop(settings, services.pipeline, services.queue, {"telegram": sender}, services.metrics)
        [(_, read)] = await services.queue.read_replies(turn.reply_stream, doomed.consumer, 10, block_ms=1000)
        assert read is not None and await services.pipeline.claim_final(read.request_id) is not None
        # kill -9 here: the event is pending for this consumer, the claim held, nothing sent.

        restarted = DeliveryLoop(settings, services.pipeline, services.queue, {"telegram": sender}, services.metrics)
        assert restarted.consumer == doomed.consumer, "a restarted bot is the same consumer"
        started = time.monotonic()
        running = asyncio.create_task(restarted.run(stop))
        await api.wait_for(lambda: len(api.sent("sendMessage", CHAT)) >= 1, timeout=30)
        assert time.monotonic() - started < restarted.lease_seconds / 4
        await asyncio.sleep(1)
        assert len(api.sent("sendMessage", CHAT)) == 1
        stop.set()
        await running
    finally:
        stop.set()
        await bot.session.close()
        await services.close()
        await api.stop()


async def test_a_final_caught_by_a_redis_outage_after_its_claim_goes_out_when_redis_is_back(
    postgres_url: str, tmp_path: Path
) -> None:
    redis = PrivateRedis(tmp_path / "redis")
    await redis.start()
    settings = stack_settings(postgres_url, redis.url, "http://127.0.0.1:9/v1", "soro")
    api = BotApiStandIn(settings.telegram_token.get_secret_value())
    await api.start()
    settings = settings.model_copy(update={"telegram_api_base": api.base})
    services = Services.create(settings)
    bot, sender = telegram_bot(settings, services)
    try:
        accepted = await services.pipeline.accept(Inbound("telegram", str(CHAT), "Салом!", "u-2"))
        [turn] = await queued(services)
        assert accepted.request_id == turn.request_id
        event = ReplyEvent(turn.request_id, turn.conversation_id, "telegram", ReplyKind.FINAL, text="Салом, дӯстам!")
        loop = DeliveryLoop(settings, services.pipeline, services.queue, {"telegram": sender}, services.metrics)

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
        await bot.session.close()
        await services.close()
        await api.stop()
        await redis.stop()
