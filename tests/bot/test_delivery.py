"""Delivery when the bot dies at the worst moment: after Telegram took the answer, before SQL recorded it.

Real PostgreSQL and Redis, the Bot API stand-in; the crash is the first sender stopping between its two steps.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.delivery import DeliveryLoop
from bot.store.models import RequestState
from inference.queue import ReplyEvent, ReplyKind
from tests.support.stack import Stack, running_stack, stack_settings
from tests.support.telegram_api import text_update

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
