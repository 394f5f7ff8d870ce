"""Group commit of accepts on real PostgreSQL and Redis: messages that arrive together share one transaction and
one Redis pipeline, and still succeed or fail one by one."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence

from redis.exceptions import ResponseError
from sqlalchemy import event, select
from sqlalchemy.exc import DBAPIError

from bot.pipeline import Accepted, DeliveryInProgress, Inbound, Outcome
from bot.services import Services
from bot.store.models import Message, Request, RequestState
from inference.queue import ReplyEvent, ReplyKind, RequestQueue, TurnRequest
from tests.bot.conftest import make_services
from tests.support.stack import eventually, queued


async def states(services: Services) -> dict[str, RequestState]:
    async with services.sessions() as session:
        return {r.id: r.state for r in (await session.scalars(select(Request))).all()}


async def test_messages_that_arrive_together_share_one_commit(postgres_url: str, redis_url: str) -> None:
    # "Together" is within the linger; on a loaded machine twenty coroutines can take longer than the default
    # millisecond just to reach it.
    services = make_services(postgres_url, redis_url, group_commit_linger_seconds=0.05)
    try:
        results = await asyncio.gather(
            *(services.pipeline.accept(Inbound("telegram", str(700 + i), f"Салом {i}", f"g-{i}")) for i in range(20))
        )
        assert [r.outcome for r in results] == [Outcome.QUEUED] * 20
        assert services.pipeline.accepts.batches == 1 and services.pipeline.accepts.largest == 20
        assert {t.request_id for t in await queued(services)} == {r.request_id for r in results}
    finally:
        await services.redis.delete(services.queue.names.requests)
        await services.close()


async def test_messages_that_arrive_one_by_one_share_the_transaction_that_marks_them_queued(
    services: Services,
) -> None:
    # Three users a few milliseconds apart, on a quiet server: each accept is a batch of its own and goes at
    # once, but marking their turns QUEUED waits for no caller, so the three marks take one transaction.
    for i in range(3):
        accepted = await services.pipeline.accept(Inbound("telegram", str(600 + i), "Салом", f"apart-{i}"))
        assert accepted.outcome is Outcome.QUEUED
        await asyncio.sleep(0.01)
    await services.pipeline.settle()
    assert services.pipeline.accepts.batches == 3
    assert services.pipeline.marks.batches == 1
    assert set((await states(services)).values()) == {RequestState.QUEUED}


async def test_one_bad_message_fails_alone(services: Services) -> None:
    good = [Inbound("telegram", str(800 + i), "Салом", f"ok-{i}") for i in range(6)]
    bad = Inbound("telegram", "9" * 100, "Салом", "bad-1")  # longer than an address may be: the row is refused
    results = await asyncio.gather(
        *(services.pipeline.accept(inbound) for inbound in [*good[:3], bad, *good[3:]]), return_exceptions=True
    )
    assert isinstance(results[3], DBAPIError)  # this update alone answers 5xx
    accepted = [r for i, r in enumerate(results) if i != 3]
    assert all(not isinstance(r, BaseException) and r.outcome is Outcome.QUEUED for r in accepted)
    assert services.pipeline.accepts.batches == 1
    turns = await queued(services)
    assert sorted(t.messages[-1].content for t in turns) == ["Салом"] * 6
    await services.pipeline.settle()
    assert set((await states(services)).values()) == {RequestState.QUEUED}


async def test_messages_of_one_chat_in_one_batch_make_one_turn(services: Services) -> None:
    results = await asyncio.gather(
        *(services.pipeline.accept(Inbound("telegram", "901", f"Савол {i}", f"c-{i}")) for i in range(4))
    )
    assert [r.outcome for r in results] == [Outcome.QUEUED] + [Outcome.JOINED] * 3
    [turn] = await queued(services)
    assert turn.messages[-1].content == "Савол 0"


async def test_a_stream_that_refuses_the_batch_fails_its_callers_and_the_turns_are_enqueued_later(
    services: Services,
) -> None:
    requests_key = services.queue.names.requests
    await services.redis.set(requests_key, "not a stream")  # XADD now fails, after the commit
    inbounds = [Inbound("telegram", str(950 + i), "Салом", f"x-{i}") for i in range(5)]
    results = await asyncio.gather(*(services.pipeline.accept(i) for i in inbounds), return_exceptions=True)
    assert all(isinstance(r, ResponseError) for r in results)  # every caller answers 5xx
    assert list((await states(services)).values()) == [RequestState.PENDING_ENQUEUE] * 5

    await services.redis.delete(requests_key)
    retried = await services.pipeline.accept(inbounds[0])  # Telegram retries one update: its turn goes now
    assert retried.outcome is Outcome.DUPLICATE
    assert len(await queued(services)) == 1
    await services.pipeline.settle()  # housekeeping looks seconds later, once the retried turn is marked QUEUED
    assert await services.pipeline.enqueue_stranded(older_than_seconds=0) == 4  # the rest, by housekeeping
    assert await services.pipeline.enqueue_stranded(older_than_seconds=0) == 0
    turns = await queued(services)
    assert len({t.request_id for t in turns}) == len(turns) == 5
    await services.pipeline.settle()
    assert set((await states(services)).values()) == {RequestState.QUEUED}


async def test_two_processes_meeting_a_new_user_at_once_both_succeed(
    services: Services, postgres_url: str, redis_url: str
) -> None:
    other = make_services(postgres_url, redis_url, stream_prefix=services.settings.stream_prefix)  # another process
    try:
        first, second = await asyncio.gather(
            services.pipeline.accept(Inbound("telegram", "990", "Салом", "p-1")),
            other.pipeline.accept(Inbound("telegram", "990", "Чӣ хел?", "p-2")),
        )
    finally:
        await other.close()
    assert sorted([first.outcome, second.outcome]) == sorted([Outcome.QUEUED, Outcome.JOINED])
    assert len(await queued(services)) == 1


async def test_answers_recorded_together_free_their_conversations_and_queue_what_waited(services: Services) -> None:
    pipeline = services.pipeline
    firsts = await asyncio.gather(
        *(pipeline.accept(Inbound("telegram", str(1100 + i), "Саволи якум", f"f1-{i}")) for i in range(6))
    )
    await asyncio.gather(
        *(pipeline.accept(Inbound("telegram", str(1100 + i), "Саволи дуюм", f"f2-{i}")) for i in range(0, 6, 2))
    )
    request_ids = [r.request_id for r in firsts if r.request_id is not None]
    claims = await asyncio.gather(
        *(pipeline.claim_final(rid) for rid in [*request_ids, request_ids[0]]), return_exceptions=True
    )
    assert all(c is not None and not isinstance(c, BaseException) for c in claims[:-1])
    assert isinstance(claims[-1], DeliveryInProgress)  # the same reply claimed twice at once: sent once
    events = [ReplyEvent(rid, 0, "telegram", ReplyKind.FINAL, text="Ҷавоб") for rid in request_ids]
    finishes_before = pipeline.finishes.batches
    await asyncio.gather(*(pipeline.finish(event, "Ҷавоб") for event in events))
    assert pipeline.finishes.batches == finishes_before + 1
    turns = await queued(services)
    follow_ups = [t for t in turns if t.request_id not in request_ids]
    assert len(follow_ups) == 3  # the conversations where a second question waited
    assert all([m.content for m in t.messages[1:]] == ["Саволи якум", "Ҷавоб", "Саволи дуюм"] for t in follow_ups)
    answered = [s for rid, s in (await states(services)).items() if rid in request_ids]
    assert answered == [RequestState.ANSWERED] * 6


async def test_an_answer_the_database_refuses_fails_alone_and_the_others_are_recorded(services: Services) -> None:
    pipeline = services.pipeline
    accepted = await asyncio.gather(
        *(pipeline.accept(Inbound("telegram", str(1300 + i), "Салом", f"b-{i}")) for i in range(4))
    )
    good, bad, expired, twice = [r.request_id for r in accepted if r.request_id is not None]
    ends = [
        (ReplyEvent(good, 0, "telegram", ReplyKind.FINAL, text="Ҷавоб"), "Ҷавоб"),
        (ReplyEvent(bad, 0, "telegram", ReplyKind.FINAL, text="Ҷа\x00воб"), "Ҷа\x00воб"),  # PostgreSQL takes no NUL
        (ReplyEvent(expired, 0, "telegram", ReplyKind.EXPIRED), ""),
        (ReplyEvent(twice, 0, "telegram", ReplyKind.FINAL, text="Ҷавоб"), "Ҷавоб"),
        (ReplyEvent(twice, 0, "telegram", ReplyKind.FINAL, text="Ҷавоб"), "Ҷавоб"),
    ]
    finishes_before = pipeline.finishes.batches

    outcomes = await asyncio.gather(*(pipeline.finish(event, text) for event, text in ends), return_exceptions=True)

    assert pipeline.finishes.batches == finishes_before + 1
    assert [isinstance(o, DBAPIError) for o in outcomes] == [False, True, False, False, False]
    stored = await states(services)
    assert stored[good] is stored[twice] is RequestState.ANSWERED
    assert stored[expired] is RequestState.EXPIRED
    # Left for another try, as if it had never been recorded (its QUEUED mark comes after the caller's answer).
    assert stored[bad] in (RequestState.PENDING_ENQUEUE, RequestState.QUEUED)
    async with services.sessions() as session:
        answers = (await session.scalars(select(Message.answer_of).where(Message.answer_of.is_not(None)))).all()
    assert sorted(answers) == sorted([good, twice])


async def test_the_first_previews_of_many_answers_find_their_chats_in_one_lookup(services: Services) -> None:
    pipeline = services.pipeline
    accepted = await asyncio.gather(
        *(pipeline.accept(Inbound("telegram", str(1200 + i), "Салом", f"t-{i}")) for i in range(8))
    )
    request_ids = [r.request_id for r in accepted if r.request_id is not None]
    await pipeline.finish(ReplyEvent(request_ids[0], 0, "telegram", ReplyKind.FINAL, text="Ҷавоб"), "Ҷавоб")
    lookups_before = pipeline.lookups.batches

    targets = await asyncio.gather(*(pipeline.target(rid) for rid in [*request_ids, request_ids[1], "no-such"]))

    assert pipeline.lookups.batches == lookups_before + 1
    assert targets[0] is None  # answered already: no preview goes out any more
    assert [t.address if t else None for t in targets[1:8]] == [str(1200 + i) for i in range(1, 8)]
    assert targets[8] == targets[1]  # asked twice in one batch, found once
    assert targets[9] is None


class FrozenQueue(RequestQueue):
    """A process that stops for good between its commit and its XADD (killed, or its host gone)."""

    async def enqueue_many(self, requests: Sequence[TurnRequest]) -> list[str]:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def test_turns_of_a_process_that_died_between_commit_and_xadd_are_enqueued_within_seconds(
    services: Services, postgres_url: str, redis_url: str
) -> None:
    prefix = services.settings.stream_prefix
    dying = make_services(postgres_url, redis_url, stream_prefix=prefix)
    dying.pipeline.queue = FrozenQueue(dying.redis, dying.queue.names)
    accepts = [
        asyncio.ensure_future(dying.pipeline.accept(Inbound("telegram", str(1200 + i), "Салом", f"d-{i}")))
        for i in range(3)
    ]

    async def committed() -> bool:
        return len(await states(services)) == 3

    await eventually(committed, what="the batch committed")
    # The process dies: its group commit stops where it is, no caller heard back, so Telegram retries each update.
    for task in [*dying.pipeline.accepts.drainers, *accepts]:
        task.cancel()
    await asyncio.gather(*dying.pipeline.accepts.drainers, *accepts, return_exceptions=True)
    await dying.close()
    assert await queued(services) == []
    assert set((await states(services)).values()) == {RequestState.PENDING_ENQUEUE}

    # Another process's housekeeping enqueues them at its next sweep, long before their deadline.
    assert await services.pipeline.enqueue_stranded(older_than_seconds=0) == 3
    assert sorted(turn.request_id for turn in await queued(services)) == sorted(await states(services))
    await services.pipeline.settle()
    assert set((await states(services)).values()) == {RequestState.QUEUED}
    # The retried updates are duplicates now, and their turns are not enqueued a second time.
    again = await services.pipeline.accept(Inbound("telegram", "1200", "Салом", "d-0"))
    assert again.outcome is Outcome.DUPLICATE
    assert len(await queued(services)) == 3


async def test_a_batch_of_every_kind_of_message_is_stored_as_one_at_a_time_would(
    postgres_url: str, redis_url: str
) -> None:
    """New chats, a message joining a turn in flight, the next turn of an answered conversation, two messages of
    one new chat, a retried update and a sticker, all in one batch of set statements."""
    services = make_services(postgres_url, redis_url, group_commit_linger_seconds=0.05)
    pipeline = services.pipeline
    try:
        in_flight = await pipeline.accept(Inbound("telegram", "1201", "Саволи аввал", "m-1"))
        answered = await pipeline.accept(Inbound("telegram", "1202", "Пойтахт куҷост?", "m-2"))
        assert answered.request_id is not None and await pipeline.claim_final(answered.request_id) is not None
        await pipeline.finish(
            ReplyEvent(answered.request_id, 0, "telegram", ReplyKind.FINAL, text="Душанбе"), "Душанбе"
        )
        batches = pipeline.accepts.batches
        results = await asyncio.gather(
            pipeline.accept(Inbound("telegram", "1201", "Боз як савол", "m-3")),
            pipeline.accept(Inbound("telegram", "1202", "Ва дарёяш?", "m-4")),
            pipeline.accept(Inbound("telegram", "1203", "Салом", "m-5")),
            pipeline.accept(Inbound("telegram", "1203", "Ман Нигорам", "m-6")),
            pipeline.accept(Inbound("telegram", "1201", "Саволи аввал", "m-1")),  # Telegram's retry
            pipeline.accept(Inbound("telegram", "1204", None, "m-7")),  # a sticker
            pipeline.accept(Inbound("telegram", "1205", "Хуш омадед", "m-8")),
        )
        assert pipeline.accepts.batches == batches + 1
        assert [r.outcome for r in results] == [
            Outcome.JOINED,
            Outcome.QUEUED,
            Outcome.QUEUED,
            Outcome.JOINED,
            Outcome.DUPLICATE,
            Outcome.REJECTED,
            Outcome.QUEUED,
        ]
        assert results[5].reason == "non_text" and results[5].notice
        turns = {t.request_id: t for t in await queued(services)}
        assert [m.content for m in turns[results[1].request_id or ""].messages[1:]] == [
            "Пойтахт куҷост?",
            "Душанбе",
            "Ва дарёяш?",
        ]
        assert [m.content for m in turns[results[2].request_id or ""].messages[1:]] == ["Салом"]
        assert in_flight.request_id in turns and len(turns) == 5  # 1201, 1202 twice, 1203, 1205
        await pipeline.settle()
        assert sorted((await states(services)).values()) == [RequestState.ANSWERED] + [RequestState.QUEUED] * 4
    finally:
        await services.redis.delete(services.queue.names.requests)
        await services.close()


async def test_next_turns_of_many_conversations_read_each_history_in_the_same_few_statements(
    services: Services,
) -> None:
    """Known users coming back together (the usual day): each turn carries its own conversation, and a batch of
    them costs as many statements as one of them."""
    pipeline = services.pipeline
    statements = 0

    def counted(*_: object) -> None:
        nonlocal statements
        statements += 1

    chats = [str(1300 + i) for i in range(4)]
    for i, chat in enumerate(chats):
        asked = await pipeline.accept(Inbound("telegram", chat, f"Савол {i}", f"h1-{i}"))
        assert asked.request_id is not None and await pipeline.claim_final(asked.request_id) is not None
        answer = f"Ҷавоб {i}"
        await pipeline.finish(ReplyEvent(asked.request_id, 0, "telegram", ReplyKind.FINAL, text=answer), answer)
    await pipeline.settle()

    def follow_up(i: int) -> Awaitable[Accepted]:
        return pipeline.accept(Inbound("telegram", chats[i], f"Боз {i}", f"h2-{i}"))

    event.listen(pipeline.engine.sync_engine, "before_cursor_execute", counted)
    try:
        [alone] = await asyncio.gather(follow_up(0))
        await pipeline.settle()  # its turn marked QUEUED, off the accept's path, counted here too
        one_statements, statements = statements, 0
        together = await asyncio.gather(*(follow_up(i) for i in range(1, 4)))
        await pipeline.settle()
        assert statements == one_statements
    finally:
        event.remove(pipeline.engine.sync_engine, "before_cursor_execute", counted)
    turns = {t.request_id: t for t in await queued(services)}
    for i, accepted in enumerate([alone, *together]):
        turn = turns[accepted.request_id or ""]
        assert [m.content for m in turn.messages[1:]] == [f"Савол {i}", f"Ҷавоб {i}", f"Боз {i}"]
