"""The worker's cost grows with an answer's length, never with its square, with previews or without."""

from __future__ import annotations

import asyncio
import json
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

TOKENS = 20_000


def event(content: str, finish: str | None = None) -> bytes:
    chunk = {"choices": [{"index": 0, "delta": {"content": content}, "finish_reason": finish}]}
    return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n".encode()


@pytest.fixture
async def long_answers() -> AsyncIterator[str]:
    """A model server whose every answer is TOKENS one-letter tokens, sent as fast as the socket takes them."""
    body = b"".join(event("а") for _ in range(TOKENS)) + event("", "stop")
    body += f'data: {{"choices": [], "usage": {{"prompt_tokens": 3, "completion_tokens": {TOKENS}}}}}\n\n'.encode()
    body += b"data: [DONE]\n\n"

    async def completions(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for start in range(0, len(body), 4096):
            await response.write(body[start : start + 4096])
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/v1/chat/completions", completions)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}/v1"
    await runner.cleanup()


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
