"""A scripted stand-in for an OpenAI-compatible server's streamed chat completions, on loopback: for tests of
how the worker reads a stream (cut bytes, odd characters, long answers, errors), which a real vLLM cannot be
made to produce."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from aiohttp import web


def event(content: str, finish: str | None = None) -> bytes:
    """One server-sent event of a streamed answer, as vLLM writes it: UTF-8, nothing escaped that JSON does not
    require."""
    chunk = {"choices": [{"index": 0, "delta": {"content": content}, "finish_reason": finish}]}
    return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n".encode()


def answer_body(pieces: list[str], completion_tokens: int) -> bytes:
    """A whole streamed answer: its pieces, the stop, the usage and [DONE]."""
    body = b"".join(event(piece) for piece in pieces) + event("", "stop")
    usage = {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": completion_tokens}}
    return body + f"data: {json.dumps(usage)}\n\n".encode() + b"data: [DONE]\n\n"


async def stream(request: web.Request, body: bytes, chunk_bytes: int) -> web.StreamResponse:
    """``body`` as an event stream, written ``chunk_bytes`` at a time."""
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    for start in range(0, len(body), chunk_bytes):
        await response.write(body[start : start + chunk_bytes])
    await response.write_eof()
    return response


@asynccontextmanager
async def completions_server(
    completions: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> AsyncIterator[str]:
    """``completions`` serving ``/v1/chat/completions`` on a free loopback port: its base URL."""
    app = web.Application()
    app.router.add_post("/v1/chat/completions", completions)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        await runner.cleanup()
