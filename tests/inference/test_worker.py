"""The worker's cost grows with an answer's length, never with its square, with previews or without."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from redis.asyncio import Redis

from inference.queue import ChatMessage, ReplyEvent, ReplyKind, RequestQueue, StreamNames, TurnRequest
from inference.worker import Worker, llm_client
from soro.metrics import WorkerMetrics
from soro.settings import Settings
from tests.support.model_stream import answer_body, completions_server, stream

TOKENS = 20_000


@pytest.fixture
async def long_answers() -> AsyncIterator[str]:
    """A model server whose every answer is TOKENS one-letter tokens, sent as fast as the socket takes them."""
    body = answer_body(["а"] * TOKENS, TOKENS)

    async def completions(request: web.Request) -> web.StreamResponse:
        return await stream(request, body, 4096)

    async with completions_server(completions) as base_url:
        yield base_url


async def generation_seconds(settings: Settings, queue: RequestQueue, stream_partials: bool) -> float:
    """Ask once through a running worker; the model-call seconds the final reply reports."""
    reply_stream = queue.names.replies("test")
    request = TurnRequest(
        request_id=str(uuid.uuid4()),
        conversation_id=1,
        channel="test",
        reply_stream=reply_stream,
        messages=[ChatMessage("user", "Салом")],
        deadline=time.time() + 60,
        max_tokens=TOKENS,
        stream_partials=stream_partials,
    )
    await queue.enqueue(request)
    last = "0"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        response = await queue.redis.xread({reply_stream: last}, block=1000)
        for _, entries in response or []:
            for entry_id, fields in entries:
                last = entry_id
                reply = ReplyEvent.from_json(fields[b"data"])
                if reply.request_id == request.request_id and reply.kind is ReplyKind.FINAL:
                    assert len(reply.text) == TOKENS
                    return reply.generation_seconds
    raise AssertionError("no final reply within 60 s")


async def test_an_answer_without_previews_costs_no_more_than_one_with_them(
    long_answers: str, redis: Redis, stream_prefix: str
) -> None:
    # Without previews (SMS) nothing is published until the end; the worker once looked at the whole text so far
    # at every token to see whether it had anything to show yet: 20,000 tokens took seconds instead of a blink.
    settings = Settings(llm_base_url=long_answers, llm_model="tiny", stream_prefix=stream_prefix)
    queue = RequestQueue(redis, StreamNames(stream_prefix))
    worker = Worker(settings, queue, llm_client(settings), WorkerMetrics())
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    try:
        with_previews = min([await generation_seconds(settings, queue, True) for _ in range(2)])
        without = min([await generation_seconds(settings, queue, False) for _ in range(2)])
    finally:
        stop.set()
        await running
        await worker.llm.close()
        keys = [key async for key in redis.scan_iter(f"{stream_prefix}:*")]
        if keys:
            await redis.delete(*keys)
    assert without < 2 * with_previews + 0.2, (without, with_previews)
