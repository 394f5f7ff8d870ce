"""A request's last reply and its ack go to Redis together: never an ack without its reply."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from inference.queue import (
    WORKERS_GROUP,
    ChatMessage,
    Delivery,
    ReplyEvent,
    ReplyKind,
    RequestQueue,
    StreamNames,
    TurnRequest,
)


@pytest.fixture
async def queue(redis: Redis) -> AsyncIterator[RequestQueue]:
    queue = RequestQueue(redis, StreamNames(f"test-queue-{uuid.uuid4().hex[:8]}"))
    await queue.ensure_group(queue.names.requests, WORKERS_GROUP)
    yield queue
    keys = [key async for key in redis.scan_iter(f"{queue.names.prefix}:*")]
    if keys:
        await redis.delete(*keys)


async def taken(queue: RequestQueue) -> Delivery:
    request = TurnRequest(
        request_id=str(uuid.uuid4()),
        conversation_id=1,
        channel="test",
        reply_stream=queue.names.replies("test"),
        messages=[ChatMessage("user", "Салом")],
        deadline=time.time() + 60,
        max_tokens=64,
    )
    await queue.enqueue(request)
    [delivery] = await queue.read("worker-1", 1, block_ms=1000)
    return delivery


def final(delivery: Delivery) -> ReplyEvent:
    return ReplyEvent(delivery.request.request_id, 1, "test", ReplyKind.FINAL, text="Ҷавоб")


async def test_the_last_reply_is_written_and_its_request_acked_and_removed(queue: RequestQueue) -> None:
    delivery = await taken(queue)

    await queue.reply_and_ack(final(delivery), delivery.request.reply_stream, delivery.entry_id)

    [(_, fields)] = await queue.redis.xrange(delivery.request.reply_stream)
    assert ReplyEvent.from_json(fields[b"data"]).text == "Ҷавоб"
    assert (await queue.redis.xpending(queue.names.requests, WORKERS_GROUP))["pending"] == 0
    assert await queue.redis.xlen(queue.names.requests) == 0


async def test_a_reply_redis_refuses_leaves_its_request_pending_for_another_try(queue: RequestQueue) -> None:
    delivery = await taken(queue)
    await queue.redis.set(delivery.request.reply_stream, "not a stream")  # XADD fails there, as in an operator's slip

    with pytest.raises(ResponseError):
        await queue.reply_and_ack(final(delivery), delivery.request.reply_stream, delivery.entry_id)

    assert (await queue.redis.xpending(queue.names.requests, WORKERS_GROUP))["pending"] == 1
    assert await queue.redis.xlen(queue.names.requests) == 1


async def test_replies_published_together_succeed_or_fail_each_on_its_own(queue: RequestQueue) -> None:
    answered, refused = await taken(queue), await taken(queue)
    refused_stream = queue.names.replies("refused")
    await queue.redis.set(refused_stream, "not a stream")
    preview = ReplyEvent(answered.request.request_id, 1, "test", ReplyKind.PARTIAL, text="Ҷа", seq=1)
    stream = answered.request.reply_stream

    outcomes = await queue.publish_many(
        [
            (preview, stream, None),
            (final(answered), stream, answered.entry_id),
            (final(refused), refused_stream, refused.entry_id),
        ]
    )

    assert outcomes[:2] == [None, None] and isinstance(outcomes[2], ResponseError)
    kinds = [ReplyEvent.from_json(fields[b"data"]).kind for _, fields in await queue.redis.xrange(stream)]
    assert kinds == [ReplyKind.PARTIAL, ReplyKind.FINAL]
    [still_pending] = await queue.redis.xpending_range(queue.names.requests, WORKERS_GROUP, "-", "+", 10)
    assert still_pending["message_id"].decode() == refused.entry_id
