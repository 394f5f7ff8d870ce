"""👍/👎 under answers, block and allow, /stats: through the webhook, real PostgreSQL and Redis, and the Bot API
stand-in. The answers are published as a worker would, so no model is needed here (tests/e2e has that)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from bot.channels.telegram.sender import feedback_data
from bot.store.models import Feedback, Request, RequestState, Vote
from inference.queue import ReplyEvent, ReplyKind
from tests.support.stack import Stack, eventually, running_stack, stack_settings
from tests.support.telegram_api import callback_update, reply_update, text_update

OPERATOR = 4242
PRIVATE = 1001
GROUP = -2001


@pytest.fixture
async def stack(postgres_url: str, redis_url: str) -> AsyncIterator[Stack]:
    settings = stack_settings(postgres_url, redis_url, "http://127.0.0.1:9/v1", "soro", operator_ids=[OPERATOR])
    async with running_stack(settings, workers=0) as running:
        yield running


async def answer(stack: Stack, chat: int, text: str, update_id: int, user_id: int | None = None) -> dict[str, Any]:
    """Ask in ``chat``, publish the model's answer, and return the final sendMessage call's parameters."""
    before = len(stack.api.sent("sendMessage", chat))
    assert await stack.post_update(text_update(update_id, chat, "Пойтахти Тоҷикистон?", user_id)) == 200
    requests = await stack.request_rows(chat)
    request = requests[-1]
    event = ReplyEvent(request.id, request.conversation_id, "telegram", ReplyKind.FINAL, text=text, model="soro")
    await stack.services.queue.publish(event, stack.services.queue.names.replies("telegram"))
    await stack.api.wait_for(lambda: len(stack.api.sent("sendMessage", chat)) > before, 20)
    await eventually(lambda: _answered(stack, request.id), 10)  # recorded just after the send
    return stack.api.sent("sendMessage", chat)[-1].params


async def votes(stack: Stack) -> list[tuple[Vote, str, str | None]]:
    async with stack.services.sessions() as session:
        return [(f.vote, f.voter, f.comment) for f in (await session.scalars(select(Feedback))).all()]


def buttons(params: dict[str, Any]) -> list[tuple[str, str]]:
    return [(b["text"], b["callback_data"]) for row in params["reply_markup"]["inline_keyboard"] for b in row]


async def test_the_final_answer_carries_buttons_and_a_tap_is_stored_once_then_changed(stack: Stack) -> None:
    final = await answer(stack, PRIVATE, "Душанбе.", 1)
    [request] = await stack.request_rows(PRIVATE)
    assert buttons(final) == [("👍", feedback_data(request.id, Vote.UP)), ("👎", feedback_data(request.id, Vote.DOWN))]
    assert not stack.api.sent("editMessageReplyMarkup")  # the buttons cost no call of their own

    message_id = final["_message_id"]
    up = dict(buttons(final))["👍"]  # the button as sent; buttons sent before it had the long form
    await stack.post_update(callback_update(2, PRIVATE, message_id, up))
    await stack.post_update(callback_update(3, PRIVATE, message_id, f"fb:up:{request.id}"))
    await stack.api.wait_for(lambda: len(stack.api.sent("answerCallbackQuery")) >= 2)
    assert [c.params["text"] for c in stack.api.sent("answerCallbackQuery")] == ["Ташаккур барои баҳо!"] * 2
    await eventually(lambda: _votes_are(stack, [(Vote.UP, str(PRIVATE), None)]), 10)

    # Changed to 👎: one toast, then one line asking what was wrong; the reply becomes the comment.
    await stack.post_update(callback_update(4, PRIVATE, message_id, f"fb:down:{request.id}"))
    await stack.api.wait_for(lambda: len(stack.api.sent("sendMessage", PRIVATE)) >= 2)
    assert stack.api.sent("answerCallbackQuery")[-1].params["text"] == "Хуб, баҳо иваз шуд."
    question = stack.api.sent("sendMessage", PRIVATE)[-1]
    assert "Чӣ нодуруст буд" in question.params["text"] and question.params["reply_markup"]["force_reply"]
    await stack.post_update(reply_update(5, PRIVATE, question.params["_message_id"], "Пойтахт Душанбе аст, не Хуҷанд"))
    await eventually(lambda: _votes_are(stack, [(Vote.DOWN, str(PRIVATE), "Пойтахт Душанбе аст, не Хуҷанд")]), 10)
    await stack.api.wait_for(lambda: len(stack.api.sent("sendMessage", PRIVATE)) >= 3)
    assert stack.api.sent("sendMessage", PRIVATE)[-1].params["text"].startswith("Ташаккур!")
    assert len(await stack.request_rows(PRIVATE)) == 1  # the comment was no new question


async def test_in_a_group_the_voter_is_whoever_tapped(stack: Stack) -> None:
    final = await answer(stack, GROUP, "Душанбе.", 1, user_id=71)
    [request] = await stack.request_rows(GROUP)
    await stack.post_update(callback_update(2, GROUP, final["_message_id"], f"fb:up:{request.id}", user_id=72))
    await eventually(lambda: _votes_are(stack, [(Vote.UP, "72", None)]), 10)


async def test_a_notice_carries_no_buttons(stack: Stack) -> None:
    await stack.post_update(text_update(1, PRIVATE, "Салом"))
    [request] = await stack.request_rows(PRIVATE)
    event = ReplyEvent(request.id, request.conversation_id, "telegram", ReplyKind.EXPIRED)
    await stack.services.queue.publish(event, stack.services.queue.names.replies("telegram"))
    await stack.api.wait_for(lambda: len(stack.api.sent("sendMessage", PRIVATE)) >= 1)
    assert "reply_markup" not in stack.api.sent("sendMessage", PRIVATE)[0].params


async def test_operators_block_unblock_and_allow_and_blocked_messages_never_reach_the_queue(stack: Stack) -> None:
    await stack.post_update(text_update(1, 5001, "/block 5002"))
    await stack.api.wait_for(lambda: len(stack.api.sent("sendMessage", 5001)) >= 1)
    assert "танҳо барои операторон" in stack.api.sent("sendMessage", 5001)[0].params["text"]

    await stack.post_update(text_update(2, OPERATOR, "/block 5002"))
    await stack.api.wait_for(lambda: len(stack.api.sent("sendMessage", OPERATOR)) >= 1)
    assert stack.api.sent("sendMessage", OPERATOR)[0].params["text"] == "5002 манъ карда шуд."
    for update_id in (3, 4, 5):
        assert await stack.post_update(text_update(update_id, 5002, "Салом")) == 200
    await stack.post_update(text_update(6, 5002, "/start"))
    await stack.api.wait_for(lambda: len(stack.api.sent("sendMessage", 5002)) >= 1)
    await eventually(lambda: _refused(stack, "blocked") >= 4, 10)
    assert [c.params["text"] for c in stack.api.sent("sendMessage", 5002)] == [
        "Бубахшед, дастрасии шумо ба Соро қатъ карда шуд."
    ]
    assert await stack.request_rows(5002) == [] and await stack.services.queue.backlog() == 0

    await stack.post_update(text_update(7, OPERATOR, "/unblock 5002"))
    await stack.api.wait_for(lambda: len(stack.api.sent("sendMessage", OPERATOR)) >= 2)
    await stack.post_update(text_update(8, 5002, "Салом"))
    await eventually(lambda: _requests(stack, 5002, 1), 10)

    # Pilot mode from one /allow: the allowed chat is served, others are told politely.
    await stack.post_update(text_update(9, OPERATOR, "/allow 5003"))
    await stack.api.wait_for(lambda: len(stack.api.sent("sendMessage", OPERATOR)) >= 3)
    await stack.post_update(text_update(10, 5003, "Салом"))
    await stack.post_update(text_update(11, 5004, "Салом"))
    await stack.api.wait_for(lambda: len(stack.api.sent("sendMessage", 5004)) >= 1)
    assert "озмоиш" in stack.api.sent("sendMessage", 5004)[0].params["text"]
    await eventually(lambda: _requests(stack, 5003, 1), 10)
    assert await stack.request_rows(5004) == []


async def test_stats_show_todays_traffic_and_votes_per_model(stack: Stack) -> None:
    final = await answer(stack, PRIVATE, "Душанбе.", 1)
    [request] = await stack.request_rows(PRIVATE)
    await stack.post_update(callback_update(2, PRIVATE, final["_message_id"], f"fb:up:{request.id}"))
    await eventually(lambda: _votes_are(stack, [(Vote.UP, str(PRIVATE), None)]), 10)
    await stack.post_update(text_update(3, OPERATOR, "/stats"))
    await stack.api.wait_for(lambda: len(stack.api.sent("sendMessage", OPERATOR)) >= 1)
    stats = stack.api.sent("sendMessage", OPERATOR)[0].params["text"]
    # No worker took the turn from the stream (its answer was published by hand): it still counts as queued.
    assert "Имрӯз: 1 паём, 1 ҷавоб, 0 огоҳӣ" in stats and "Навбат: 1 савол." in stats
    assert "soro: 1 ҷавоб, 0 огоҳӣ, 👍 1 · 👎 0 (100% 👍), медиана " in stats


async def _answered(stack: Stack, request_id: str) -> bool:
    return any(r.id == request_id and r.state is RequestState.ANSWERED for r in await stack.request_rows())


async def _votes_are(stack: Stack, expected: list[tuple[Vote, str, str | None]]) -> bool:
    return await votes(stack) == expected


async def _requests(stack: Stack, chat: int, count: int) -> bool:
    rows: list[Request] = await stack.request_rows(chat)
    return len(rows) == count


def _refused(stack: Stack, reason: str) -> float:
    value = stack.services.metrics.registry.get_sample_value(
        "soro_messages_rejected_total", {"channel": "telegram", "reason": reason}
    )
    return value or 0.0
