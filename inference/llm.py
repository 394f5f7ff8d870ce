"""Streaming chat completions from an OpenAI-compatible server (vLLM), over aiohttp.

A worker reads one server-sent event per generated token of every answer it has in flight, so the cost of
reading one event is what a worker's CPU goes to. Through the ``openai`` SDK an event passed httpx, httpcore
and anyio (a timeout scope per read) and came to 0.1–0.3 ms of CPU; aiohttp's parser reads the same stream
for about a third of that. The SDK also closed the connection after every answer (it stopped reading at
``[DONE]``, before the end of the body), so each request paid a new TCP connection on both sides.

Errors are told apart as the SDK told them: ``ModelUnavailable`` (connection refused or lost before the
answer began, a timeout, HTTP 5xx or 429) is worth retrying; ``ModelRefused`` (any other HTTP error, such as a
400 for a prompt the model cannot take) fails the same way every time.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from inference.queue import ChatMessage

# The kinds of ``ModelUnavailable``, named as the openai SDK named these errors, so the error metric's series
# go on under the same labels.
CONNECTION, TIMEOUT, SERVER_ERROR, RATE_LIMITED = (
    "APIConnectionError",
    "APITimeoutError",
    "InternalServerError",
    "RateLimitError",
)
UNAVAILABLE_KINDS = (CONNECTION, TIMEOUT, SERVER_ERROR, RATE_LIMITED)


class ModelUnavailable(Exception):
    """The server is down, restarting, overloaded or slow: worth trying again."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


class ModelRefused(Exception):
    """The server answered the request with an HTTP error that a retry would only repeat."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status


@dataclass(frozen=True)
class Delta:
    text: str = ""
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class LlmClient:
    """One OpenAI-compatible server: its base URL (``…/v1``), its key, and the kept-alive connections to it.

    The connections belong to the event loop of the first request; ``close`` them on that loop. Retries are
    the caller's (bounded by each request's deadline), never the client's.
    """

    def __init__(self, base_url: str, api_key: str, connect_timeout: float = 5.0, read_timeout: float = 600.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        # As the SDK had it: 5 s to connect, 600 s for any one read.
        self.timeout = aiohttp.ClientTimeout(total=None, connect=connect_timeout, sock_read=read_timeout)
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # No limit of its own: the worker bounds how many requests it has in flight, and a pool limit
            # below that would queue requests here, unseen.
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0),
                timeout=self.timeout,
                headers={"Authorization": f"Bearer {self.api_key}", "Content-Type": "application/json"},
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


async def stream_chat(
    client: LlmClient,
    model: str,
    messages: Sequence[ChatMessage],
    max_tokens: int,
    temperature: float,
    stream_interval: int = 1,
) -> AsyncGenerator[Delta]:
    """The answer as it is generated, ``stream_interval`` tokens a delta after the first (vLLM's field, sent
    only above 1); the last delta carries the token usage.

    Failures before the answer begins raise ``ModelUnavailable`` or ``ModelRefused``; a connection lost in
    the middle of an answer raises aiohttp's own error (the request is left to another attempt).
    """
    body = {
        "model": model,
        "messages": [{"role": m.role, "content": m.content} for m in messages],
        "max_tokens": max_tokens,
        "temperature": temperature,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if stream_interval > 1:
        body["stream_interval"] = stream_interval
    data = json.dumps(body, ensure_ascii=False).encode()
    try:
        response = await client._http().post(f"{client.base_url}/chat/completions", data=data)
    except TimeoutError as exc:
        raise ModelUnavailable(TIMEOUT, "no connection in time") from exc
    except aiohttp.ClientError as exc:
        raise ModelUnavailable(CONNECTION, str(exc) or type(exc).__name__) from exc
    async with response:
        if response.status >= 400:
            await _raise_for_status(response)
        done = False
        pending = b""
        # Only LF (or CR LF) ends a line: the JSON in an event carries the model's text as it is, and a model can
        # write U+2028 or U+0085, where ``str.splitlines`` would cut the event in two.
        async for chunk in response.content.iter_any():
            if pending:
                chunk = pending + chunk
            *lines, pending = chunk.split(b"\n")
            for line in lines:
                # After [DONE] the body is read to its end all the same: a response left unfinished closes its
                # connection, and the next request would pay for a new one.
                if done or not line.startswith(b"data:"):
                    continue
                payload = line[5:].strip()
                if payload == b"[DONE]":
                    done = True
                    continue
                yield _delta(json.loads(payload))
        if pending.startswith(b"data:") and not done:
            payload = pending[5:].strip()
            if payload and payload != b"[DONE]":
                yield _delta(json.loads(payload))


async def _raise_for_status(response: aiohttp.ClientResponse) -> None:
    try:
        detail = (await asyncio.wait_for(response.text(errors="replace"), 5.0))[:500]
    except (TimeoutError, aiohttp.ClientError):
        detail = response.reason or ""
    if response.status >= 500:
        raise ModelUnavailable(SERVER_ERROR, f"HTTP {response.status}: {detail}")
    if response.status == 429:
        raise ModelUnavailable(RATE_LIMITED, detail)
    raise ModelRefused(response.status, detail)


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
