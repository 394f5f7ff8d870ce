"""Accepting messages: what is stored, what is queued, and what the user is told, on real PostgreSQL and Redis."""

import asyncio
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import select

from bot.limits import Window
from bot.pipeline import DeliveryInProgress, Inbound, Outcome
from bot.services import Services
from bot.store.models import Message, Request, RequestState, User
from inference.queue import ReplyEvent, ReplyKind
from soro.ports import free_port
from tests.support.stack import eventually, queued, stack_settings


async def test_a_text_message_is_stored_normalised_and_queued_with_the_system_prompt(services: Services) -> None:
    accepted = await services.pipeline.accept(Inbound("telegram", "501", "Салом, њамаи шумо чї хел?", "u-1"))
    assert accepted.outcome is Outcome.QUEUED
    [turn] = await queued(services)
    assert turn.request_id == accepted.request_id
    assert turn.messages[0].role == "system" and "тоҷикӣ" in turn.messages[0].content
    assert turn.messages[-1].content == "Салом, ҳамаи шумо чӣ хел?"
    assert turn.deadline > turn.created_at
    await services.pipeline.settle()
    async with services.sessions() as session:
        request = await session.get(Request, turn.request_id)
        assert request is not None and request.state is RequestState.QUEUED


async def test_a_duplicate_update_is_ignored(services: Services) -> None:
    first = await services.pipeline.accept(Inbound("telegram", "502", "Салом", "u-2"))
    again = await services.pipeline.accept(Inbound("telegram", "502", "Салом", "u-2"))
    assert (first.outcome, again.outcome) == (Outcome.QUEUED, Outcome.DUPLICATE)
    assert len(await queued(services)) == 1


async def test_non_text_and_oversized_messages_get_polite_tajik_notices(services: Services) -> None:
    sticker = await services.pipeline.accept(Inbound("telegram", "503", None, "u-3"))
    long = await services.pipeline.accept(Inbound("telegram", "503", "х" * 501, "u-4"))
    assert sticker.outcome is long.outcome is Outcome.REJECTED
    assert sticker.notice is not None and "матн" in sticker.notice
    assert long.notice is not None and "500" in long.notice
    assert await queued(services) == []


async def test_one_request_in_flight_per_conversation_and_waiting_messages_join_the_next_turn(
    services: Services,
) -> None:
    pipeline = services.pipeline
    first = await pipeline.accept(Inbound("telegram", "504", "Саволи якум", "u-5"))
    second = await pipeline.accept(Inbound("telegram", "504", "Саволи дуюм", "u-6"))
    third = await pipeline.accept(Inbound("telegram", "504", "Саволи сеюм", "u-7"))
    assert [first.outcome, second.outcome, third.outcome] == [Outcome.QUEUED, Outcome.JOINED, Outcome.JOINED]
    assert len(await queued(services)) == 1

    assert first.request_id is not None
    assert await pipeline.claim_final(first.request_id) is not None
    await pipeline.finish(
        ReplyEvent(first.request_id, 0, "telegram", ReplyKind.FINAL, text="Ҷавоби якум"), "Ҷавоби якум"
    )
    turns = await queued(services)
    assert len(turns) == 2
    follow_up = turns[1]
    assert [m.role for m in follow_up.messages] == ["system", "user", "assistant", "user"]
    assert follow_up.messages[-1].content == "Саволи дуюм\nСаволи сеюм"
    assert follow_up.messages[-2].content == "Ҷавоби якум"


async def test_a_final_reply_is_claimed_once(services: Services) -> None:
    pipeline = services.pipeline
    accepted = await pipeline.accept(Inbound("telegram", "505", "Салом", "u-8"))
    assert accepted.request_id is not None
    assert await pipeline.claim_final(accepted.request_id) is not None
    with pytest.raises(DeliveryInProgress):  # held by the first claim: retry later, never drop
        await pipeline.claim_final(accepted.request_id)
    # A claim whose holder died is taken over once its lease has run out.
    assert await pipeline.claim_final(accepted.request_id, lease_seconds=0) is not None
    event = ReplyEvent(accepted.request_id, 0, "telegram", ReplyKind.FINAL, text="Салом!")
    await pipeline.finish(event, "Салом!")
    await pipeline.finish(event, "Салом!")  # recording twice changes nothing
    assert await pipeline.claim_final(accepted.request_id) is None


async def test_overdue_requests_belong_to_the_loop_that_reads_their_replies(services: Services) -> None:
    accepted = await services.pipeline.accept(Inbound("telegram", "510", "Салом", "o-1"))
    await asyncio.sleep(0.05)
    telegram_stream = services.queue.names.replies("telegram")
    assert await services.pipeline.overdue([telegram_stream], grace_seconds=-3600) == [accepted.request_id]
    # A console session's delivery loop must not answer (or expire) a Telegram user's request.
    assert await services.pipeline.overdue([telegram_stream + ":console:other"], grace_seconds=-3600) == []


async def test_backlog_over_the_limit_gets_a_busy_notice(services: Services) -> None:
    services.pipeline.settings = services.settings.model_copy(update={"backlog_limit": 2})
    outcomes = [
        (await services.pipeline.accept(Inbound("telegram", str(600 + i), "Салом", f"b-{i}"))).outcome for i in range(3)
    ]
    assert outcomes == [Outcome.QUEUED, Outcome.QUEUED, Outcome.REJECTED]


async def test_rate_limit_and_daily_quota(services: Services) -> None:
    services.limits.minute = Window(60, 2)
    results = [await services.pipeline.accept(Inbound("telegram", "507", f"Салом {i}", f"r-{i}")) for i in range(3)]
    assert results[2].outcome is Outcome.REJECTED
    assert results[2].notice is not None and "зуд" in results[2].notice


async def test_forget_deletes_everything_about_a_user(services: Services) -> None:
    await services.pipeline.accept(Inbound("telegram", "508", "Маълумоти махфии 508", "f-1"))
    language = await services.pipeline.forget("telegram", "508")
    assert language == "tg"
    async with services.sessions() as session:
        assert (await session.scalars(select(User).where(User.address == "508"))).all() == []
        assert (await session.scalars(select(Message).where(Message.text == "Маълумоти махфии 508"))).all() == []


async def test_redis_down_fails_the_update_so_it_is_retried_and_nothing_is_lost(
    postgres_url: str, tmp_path: Path
) -> None:
    port = free_port()
    command = ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no", "--dir", str(tmp_path)]
    redis_server = _start(command)
    settings = stack_settings(postgres_url, f"redis://127.0.0.1:{port}/0", "http://127.0.0.1:9/v1", "soro")
    services = Services.create(settings)
    try:
        await eventually(_answers(services))
        redis_server.terminate()
        redis_server.wait()
        with pytest.raises(RedisConnectionError):  # the webhook answers 5xx: Telegram will retry
            await services.pipeline.accept(Inbound("telegram", "509", "Салом", "down-1"))
        redis_server = _start(command)
        await eventually(_answers(services))
        retried = await services.pipeline.accept(Inbound("telegram", "509", "Салом", "down-1"))
        assert retried.outcome in (Outcome.QUEUED, Outcome.DUPLICATE)
        [turn] = await queued(services)
        assert turn.messages[-1].content == "Салом"
        await services.pipeline.settle()
        async with services.sessions() as session:
            request = await session.get(Request, turn.request_id)
            assert request is not None and request.state is RequestState.QUEUED
    finally:
        redis_server.terminate()
        redis_server.wait()
        await services.close()


def _start(command: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, stdout=subprocess.DEVNULL)


def _answers(services: Services) -> Callable[[], Awaitable[bool]]:
    async def ping() -> bool:
        try:
            return bool(await services.redis.ping())
        except RedisConnectionError:
            return False

    return ping
