"""What a 429 costs each kind of call: a preview skips, a final answer waits it out however long it is."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from aiogram import Bot
from aiogram.client.telegram import TelegramAPIServer

from bot.channels.telegram.previews import LinkEstimate
from bot.channels.telegram.sender import REPLY_PATIENCE_SECONDS, ApiMiddleware, TelegramSender
from bot.channels.telegram.session import JsonSession
from bot.pacing import OutboundLimiter
from bot.pipeline import Target
from soro.metrics import BotMetrics
from tests.support.telegram_api import BotApiStandIn

CHAT = 4242
ANSWER = "Кӯҳҳои Помир дар шарқи Тоҷикистон ҷойгиранд."


@pytest.fixture
async def sender(api: BotApiStandIn) -> AsyncIterator[TelegramSender]:
    bot = Bot(api.token, session=JsonSession(api=TelegramAPIServer.from_base(api.base)))
    limiter = OutboundLimiter(global_rate=30, chat_rate=10)
    metrics, link = BotMetrics(), LinkEstimate()
    bot.session.middleware(ApiMiddleware(limiter, metrics, link))
    yield TelegramSender(bot, limiter, metrics, link)
    await bot.session.close()


def target(request_id: str) -> Target:
    return Target("telegram", str(CHAT), "tg", request_id, conversation_id=1, received_at=time.time())


async def test_a_final_answer_waits_out_a_429_longer_than_a_reply_may_and_is_sent_once(
    api: BotApiStandIn, sender: TelegramSender
) -> None:
    wait = int(REPLY_PATIENCE_SECONDS) + 1
    api.fail("sendMessage", status=429, retry_after=wait, times=1)
    started = time.monotonic()

    sent = await sender.send_final(target("r-final"), ANSWER)

    assert time.monotonic() - started >= wait
    assert sent.text == ANSWER
    assert [call.params["text"] for call in api.sent("sendMessage", CHAT)] == [ANSWER]
    assert [call.failed for call in api.calls] == [429, None]


async def test_a_preview_caught_by_a_429_is_skipped_at_once_and_the_answer_still_arrives(
    api: BotApiStandIn, sender: TelegramSender
) -> None:
    api.fail("sendMessageDraft", status=429, retry_after=30, times=1)
    started = time.monotonic()

    shown = await sender.send_partial(target("r-preview"), ANSWER[:20])

    assert not shown
    assert time.monotonic() - started < 2  # not 30 s asleep behind a preview nobody will see
    assert [call.failed for call in api.calls] == [429]  # made once, not again after the wait
    await sender.send_final(target("r-preview"), ANSWER)
    assert api.texts(CHAT) == [ANSWER]
