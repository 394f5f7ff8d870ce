"""The model's streamed answer arrives whole, whatever characters it holds and however the bytes are cut."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from openai import AsyncOpenAI

from inference.llm import stream_chat
from inference.queue import ChatMessage

# Characters that str.splitlines() takes for line ends, as a model may write them inside an answer.
PIECES = ["Салом", "\u2028дунё", "\x85!", " Ҳа\u2029", "\x1cнеки"]


def event(content: str, finish: str | None = None) -> bytes:
    chunk = {"choices": [{"index": 0, "delta": {"content": content}, "finish_reason": finish}]}
    # As vLLM writes them: UTF-8, nothing escaped that JSON does not require.
    return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n".encode()


@pytest.fixture
async def server() -> AsyncIterator[str]:
    async def completions(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        body = b"".join(event(piece) for piece in PIECES)
        body += event("", "stop") + b'data: {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 5}}\n\n'
        body += b"data: [DONE]\n\n"
        for start in range(0, len(body), 7):  # cut anywhere, in the middle of letters too
            await response.write(body[start : start + 7])
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


async def test_line_separators_inside_the_answer_do_not_cut_it(server: str) -> None:
    client = AsyncOpenAI(base_url=server, api_key="test", max_retries=0)
    deltas = [d async for d in stream_chat(client, "tiny", [ChatMessage("user", "Салом")], 16, 0.0)]
    await client.close()
    assert "".join(d.text for d in deltas) == "".join(PIECES)
    assert deltas[-1].completion_tokens == 5
    assert any(d.finish_reason == "stop" for d in deltas)
