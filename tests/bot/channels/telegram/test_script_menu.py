"""/language offers the script of Tajik answers, Кириллӣ or Lotinī, and a tap on one is kept for the user."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from bot.store.models import User
from tests.support.stack import Stack, eventually, running_stack, stack_settings
from tests.support.telegram_api import text_update

CHAT = 4001


def _tap(update_id: int, data: str) -> dict[str, Any]:
    """The update Telegram sends when a button of the bot's menu is tapped."""
    user = {"id": CHAT, "is_bot": False, "first_name": "Test"}
    return {
        "update_id": update_id,
        "callback_query": {
            "id": f"cb-{update_id}",
            "from": user,
            "chat_instance": "1",
            "data": data,
            "message": {
                "message_id": 1,
                "date": int(time.time()),
                "chat": {"id": CHAT, "type": "private"},
                "from": {"id": 123456, "is_bot": True, "first_name": "Soro"},
                "text": "Забонро интихоб кунед",
            },
        },
    }


@pytest.fixture
async def stack(postgres_url: str, redis_url: str) -> AsyncIterator[Stack]:
    # No message reaches a model here, so no worker and no model server.
    settings = stack_settings(postgres_url, redis_url, "http://127.0.0.1:9/v1", "soro")
    async with running_stack(settings, workers=0) as running:
        yield running


async def _script(stack: Stack) -> str | None:
    async with stack.services.sessions() as session:
        return await session.scalar(select(User.script).where(User.address == str(CHAT)))


async def test_the_language_menu_offers_both_scripts_and_keeps_the_choice(stack: Stack) -> None:
    assert await stack.post_update(text_update(1, CHAT, "/language")) == 200
    await stack.api.wait_for(lambda: len(stack.api.sent("sendMessage", CHAT)) >= 1)
    markup = stack.api.sent("sendMessage", CHAT)[0].params["reply_markup"]
    buttons = [b["text"] for row in markup["inline_keyboard"] for b in row]
    assert "Кириллӣ" in buttons and "Lotinī" in buttons and "Тоҷикӣ" in buttons

    assert await stack.post_update(_tap(2, "script:latn")) == 200
    await eventually(lambda: _is(stack, "latn"))
    await stack.api.wait_for(lambda: len(stack.api.sent("answerCallbackQuery")) >= 1)
    assert stack.api.sent("answerCallbackQuery")[0].params["text"].startswith("Xub, aknun javobho bo harfhoi lotinī")

    assert await stack.post_update(_tap(3, "script:cyrl")) == 200
    await eventually(lambda: _is(stack, "cyrl"))


async def _is(stack: Stack, script: str) -> bool:
    return await _script(stack) == script
