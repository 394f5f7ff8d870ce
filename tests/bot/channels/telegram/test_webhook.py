"""The webhook refuses for good what can never become a valid update, and keeps what it can of the rest.

Telegram retries every answer but 2xx: a 5xx for a body that will never parse means the same update forever.
Real PostgreSQL and Redis, the real dispatcher, the Bot API stand-in.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from bot.store.models import Message, Role
from bot.texts import T, text
from tests.support.stack import WEBHOOK_SECRET, Stack, running_stack, stack_settings
from tests.support.telegram_api import sticker_update, text_update

CHAT = 7001


@pytest.fixture
async def stack(postgres_url: str, redis_url: str) -> AsyncIterator[Stack]:
    settings = stack_settings(postgres_url, redis_url, "http://127.0.0.1:9/v1", "soro")
    async with running_stack(settings, workers=0) as running:
        yield running


async def post_raw(stack: Stack, body: bytes) -> int:
    assert stack.http is not None
    headers = {"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET, "Content-Type": "application/json"}
    async with stack.http.post(stack.webhook, data=body, headers=headers) as response:
        return response.status


def callback_update(update_id: int, query_id: str, data: str) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "callback_query": {
            "id": query_id,
            "from": {"id": CHAT, "is_bot": False, "first_name": "Test"},
            "chat_instance": "1",
            "data": data,
            "message": {
                "message_id": 1,
                "date": int(time.time()),
                "chat": {"id": CHAT, "type": "private"},
                "text": "menu",
            },
        },
    }


async def user_texts(stack: Stack) -> list[str]:
    async with stack.services.sessions() as session:
        rows = await session.scalars(select(Message.text).where(Message.role == Role.USER))
        return list(rows.all())


async def test_a_lone_surrogate_in_a_message_is_replaced_and_the_rest_kept(stack: Stack) -> None:
    status = await stack.post_update(text_update(1, CHAT, "Салом \ud800 дӯстам"))
    assert status == 200
    assert await user_texts(stack) == ["Салом \ufffd дӯстам"]


async def test_a_lone_surrogate_in_callback_data_is_answered_not_retried(stack: Stack) -> None:
    assert await stack.post_update(callback_update(2, "42\ud800", "lang:\udc80")) == 200
    [answer] = stack.api.sent("answerCallbackQuery")
    assert answer.params["callback_query_id"] == "42\ufffd"


async def test_json_nested_thousands_deep_is_refused_for_good(stack: Stack) -> None:
    deep = b'{"update_id": 3, "message": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    assert await post_raw(stack, deep) == 400


async def test_numbers_longer_than_any_telegram_id_are_refused_for_good(stack: Stack) -> None:
    update = text_update(4, CHAT, "Салом")
    body = json.dumps(update).replace('"update_id": 4', '"update_id": ' + "9" * 70).encode()
    assert await post_raw(stack, body) == 400
    assert await user_texts(stack) == []


@pytest.mark.parametrize("body", [b"", b"not json", b"[]", b'"text"', b"\xff\xfe{", b'{"update_id": "x"}'])
async def test_bodies_that_are_no_update_are_refused_for_good(stack: Stack, body: bytes) -> None:
    assert await post_raw(stack, body) == 400


async def test_a_normal_message_after_all_that_is_still_accepted(stack: Stack) -> None:
    await post_raw(stack, b"[" * 10_000)
    assert await stack.post_update(text_update(5, CHAT, "Ман саволе дорам")) == 200
    assert await user_texts(stack) == ["Ман саволе дорам"]


async def test_an_update_of_a_kind_the_bot_does_not_know_is_acknowledged_not_retried(stack: Stack) -> None:
    assert await post_raw(stack, b'{"update_id": 6, "some_future_kind": {"id": 1}}') == 200
    assert await user_texts(stack) == []


async def test_a_notice_caught_by_flood_control_waits_it_out_and_is_sent(stack: Stack) -> None:
    stack.api.fail("sendMessage", status=429, retry_after=1, times=1)
    assert await stack.post_update(sticker_update(7, CHAT)) == 200
    [notice] = stack.api.sent("sendMessage", CHAT)
    assert notice.params["text"] == text(T.NON_TEXT, "tg")


async def test_a_notice_the_bot_api_refuses_does_not_hold_up_the_chat(stack: Stack) -> None:
    stack.api.fail("sendMessage", status=429, retry_after=60, times=1)
    assert await stack.post_update(sticker_update(8, CHAT)) == 200
    stack.api.fail("sendMessage", status=500, retry_after=None, times=1)
    assert await stack.post_update(text_update(9, CHAT, "Салом" * 900)) == 200
    # Telegram retries nothing, and the chat's next message goes in as usual.
    assert await stack.post_update(text_update(10, CHAT, "Ман саволе дорам")) == 200
    assert stack.api.sent("sendMessage", CHAT) == []
    assert await user_texts(stack) == ["Ман саволе дорам"]
