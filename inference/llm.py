"""Streaming chat completions from an OpenAI-compatible server, through the ``openai`` SDK.

The SDK builds a typed object for every streamed chunk; at tens of chunks per answer and tens of answers at
once that costs more CPU than everything else a worker does. Here the SDK still makes the request (auth,
errors, timeouts) and the server-sent events are read as plain JSON.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionMessageParam

from inference.queue import ChatMessage


@dataclass(frozen=True)
class Delta:
    text: str = ""
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


async def stream_chat(
    client: AsyncOpenAI,
    model: str,
    messages: Sequence[ChatMessage],
    max_tokens: int,
    temperature: float,
) -> AsyncGenerator[Delta]:
    """The answer as it is generated; the last delta carries the token usage."""
    async with client.chat.completions.with_streaming_response.create(
        model=model,
        messages=cast("list[ChatCompletionMessageParam]", [{"role": m.role, "content": m.content} for m in messages]),
        max_tokens=max_tokens,
        temperature=temperature,
        stream=True,
        stream_options={"include_usage": True},
    ) as response:
        async for line in _event_lines(response.iter_bytes()):
            if not line.startswith("data:"):
                continue
            payload = line[5:].strip()
            if payload == "[DONE]":
                break
            yield _delta(json.loads(payload))


async def _event_lines(chunks: AsyncIterator[bytes]) -> AsyncGenerator[str]:
    """The lines of a server-sent event stream. Only LF (or CR LF) ends a line: the JSON in an event carries
    the model's text as it is, and a model can write U+2028 or U+0085, where ``str.splitlines`` (and so
    httpx's ``iter_lines``) would cut the event in two."""
    pending = b""
    async for chunk in chunks:
        *lines, pending = (pending + chunk).split(b"\n")
        for line in lines:
            yield line.rstrip(b"\r").decode()
    if pending:
        yield pending.decode()


def _delta(chunk: dict[str, Any]) -> Delta:
    usage = chunk.get("usage") or {}
    choices = chunk.get("choices") or [{}]
    choice = choices[0]
    return Delta(
        text=(choice.get("delta") or {}).get("content") or "",
        finish_reason=choice.get("finish_reason"),
        prompt_tokens=usage.get("prompt_tokens"),
        completion_tokens=usage.get("completion_tokens"),
    )
