"""The model's streamed answer arrives whole, whatever characters it holds and however the bytes are cut; one
connection serves answer after answer; errors say whether a retry can help."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from inference.llm import (
    CONNECTION,
    RATE_LIMITED,
    SERVER_ERROR,
    Delta,
    LlmClient,
    ModelRefused,
    ModelUnavailable,
    stream_chat,
)
from inference.queue import ChatMessage
from inference.worker import llm_client
from soro.ports import free_port
from soro.settings import Settings
from tests.support.model_stream import answer_body, completions_server, stream
from tests.support.vllm import ServedModel

# Characters that str.splitlines() takes for line ends, as a model may write them inside an answer.
PIECES = ["Салом", "\u2028дунё", "\x85!", " Ҳа\u2029", "\x1cнеки"]


class Server:
    def __init__(self) -> None:
        self.base_url = ""
        self.peers: list[object] = []  # the client's address of each request: one per connection
        self.status = 200


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    served = Server()
    body = answer_body(PIECES, 5)

    async def completions(request: web.Request) -> web.StreamResponse:
        served.peers.append(request.transport.get_extra_info("peername") if request.transport else None)
        if served.status != 200:
            return web.json_response({"error": {"message": "no"}}, status=served.status)
        return await stream(request, body, 7)  # cut anywhere, in the middle of letters too

    async with completions_server(completions) as base_url:
        served.base_url = base_url
        yield served


async def answer(client: LlmClient) -> list[Delta]:
    return [d async for d in stream_chat(client, "tiny", [ChatMessage("user", "Салом")], 16, 0.0)]


async def failure(server: Server, status: int) -> BaseException:
    """What reading an answer raises when the server answers ``status``."""
    server.status = status
    client = LlmClient(server.base_url, "test")
    try:
        await answer(client)
    except Exception as exc:
        return exc
    finally:
        await client.close()
    raise AssertionError(f"an answer with HTTP {status} was read as if it were fine")


async def test_line_separators_inside_the_answer_do_not_cut_it(server: Server) -> None:
    client = LlmClient(server.base_url, "test")
    try:
        deltas = await answer(client)
    finally:
        await client.close()
    assert "".join(d.text for d in deltas) == "".join(PIECES)
    assert deltas[-1].completion_tokens == 5
    assert any(d.finish_reason == "stop" for d in deltas)


async def test_one_connection_serves_answer_after_answer(server: Server) -> None:
    # The worker's client, as the worker makes it: an answer read to its [DONE] must leave the connection open.
    client = llm_client(Settings(llm_base_url=server.base_url))
    try:
        for _ in range(3):
            await answer(client)  # type: ignore[arg-type]
    finally:
        await client.close()
    assert len(server.peers) == 3
    assert len(set(server.peers)) == 1, server.peers


@pytest.mark.parametrize(
    ("status", "kind"), [(500, SERVER_ERROR), (502, SERVER_ERROR), (503, SERVER_ERROR), (429, RATE_LIMITED)]
)
async def test_an_overloaded_or_failing_server_is_worth_a_retry(server: Server, status: int, kind: str) -> None:
    error = await failure(server, status)
    assert isinstance(error, ModelUnavailable) and error.kind == kind


@pytest.mark.parametrize("status", [400, 404, 422])
async def test_a_refused_request_is_not(server: Server, status: int) -> None:
    error = await failure(server, status)
    assert isinstance(error, ModelRefused) and error.status == status


async def test_no_server_is_worth_a_retry() -> None:
    client = LlmClient(f"http://127.0.0.1:{free_port()}/v1", "test")
    try:
        with pytest.raises(ModelUnavailable) as caught:
            await answer(client)
    finally:
        await client.close()
    assert caught.value.kind == CONNECTION


@pytest.mark.slow
async def test_vllm_sends_a_group_of_tokens_an_event_and_the_answer_is_the_same(vllm_server: ServedModel) -> None:
    client = llm_client(Settings(), vllm_server.base_url)
    messages = [ChatMessage("system", "Ту Соро ҳастӣ."), ChatMessage("user", "Дар бораи кӯҳҳои Помир нақл кунед.")]

    async def answer(interval: int) -> tuple[str, int, int]:
        deltas = [d async for d in stream_chat(client, vllm_server.model, messages, 48, 0.0, interval)]
        tokens = next(d.completion_tokens for d in deltas if d.completion_tokens is not None)
        return "".join(d.text for d in deltas), sum(bool(d.text) for d in deltas), tokens

    try:
        each, each_events, tokens = await answer(1)
        grouped, grouped_events, grouped_tokens = await answer(8)
    finally:
        await client.close()
    assert tokens > 16, "the model stopped too soon to tell"
    assert (grouped, grouped_tokens) == (each, tokens)  # greedy: the same answer, only in fewer events
    assert grouped_events <= tokens // 8 + 2 < each_events
