"""An OpenAI-compatible HTTP stand-in on 127.0.0.1 whose replies come from a Python function.

It speaks just enough of the API for the evaluation's endpoint backend: ``GET /v1/models`` and
``POST /v1/chat/completions``, streamed as server-sent events (a chunk per word, then a usage chunk) or not.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

Answerer = Callable[[list[dict[str, str]]], str]


class OpenAIStandIn:
    def __init__(self, answer: Answerer, *, model: str = "stand-in", delay_seconds: float = 0.0) -> None:
        self.answer = answer
        self.model = model
        self.delay_seconds = delay_seconds
        self.requests: list[dict[str, Any]] = []
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    async def __aenter__(self) -> OpenAIStandIn:
        app = web.Application()
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/chat/completions", self._chat)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}/v1"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"object": "list", "data": [{"id": self.model, "object": "model", "created": 0, "owned_by": "test"}]}
        )

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        text = self.answer(body["messages"])
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        usage = {"prompt_tokens": 10, "completion_tokens": len(text.split()), "total_tokens": 10 + len(text.split())}
        created = int(time.time())
        if not body.get("stream"):
            return web.json_response(
                {
                    "id": "cmpl-test",
                    "object": "chat.completion",
                    "created": created,
                    "model": self.model,
                    "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                    ],
                    "usage": usage,
                }
            )
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)

        async def send(choices: list[dict[str, Any]], usage: dict[str, int] | None = None) -> None:
            chunk = {
                "id": "cmpl-test",
                "object": "chat.completion.chunk",
                "created": created,
                "model": self.model,
                "choices": choices,
                "usage": usage,
            }
            await response.write(f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n".encode())

        words = text.split(" ")
        for i, word in enumerate(words):
            piece = word if i == 0 else f" {word}"
            await send([{"index": 0, "delta": {"role": "assistant", "content": piece}, "finish_reason": None}])
        await send([{"index": 0, "delta": {}, "finish_reason": "stop"}])
        if (body.get("stream_options") or {}).get("include_usage"):
            await send([], usage)
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response
