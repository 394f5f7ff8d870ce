"""Tajik in Latin letters, end to end: Telegram → restored Cyrillic prompt at the real vLLM → a Latin answer.

A recording proxy in front of vLLM shows what the model was actually sent; the Bot API stand-in shows what the
user saw. The tiny model's tokenizer was trained on Tajik, so its (random) answers are Cyrillic text.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest

from bot.channels.telegram.previews import PreviewPolicy
from bot.store.models import RequestState, Role
from tajik.translit import _LATIN
from tests.support.proxy import TcpProxy
from tests.support.stack import Stack, eventually, running_stack, stack_settings
from tests.support.telegram_api import text_update
from tests.support.vllm import ServedModel

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

CHAT = 3001
TYPED = "Salom! Man imruz ba maktab naraftam, chi kor kunam?"
RESTORED = "Салом! Ман имрӯз ба мактаб нарафтам, чӣ кор кунам?"
CYRILLIC_LETTERS = frozenset(_LATIN) | {ch.upper() for ch in _LATIN}


class _Tap:
    """A stream reader that keeps a copy of what it reads."""

    def __init__(self, reader: object, sink: bytearray) -> None:
        self.reader = reader
        self.sink = sink

    async def read(self, n: int) -> bytes:
        data: bytes = await self.reader.read(n)  # type: ignore[attr-defined]
        self.sink += data
        return data


class RecordingProxy(TcpProxy):
    """Keeps every byte sent to the server: the HTTP requests the worker made to vLLM."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(host, port)
        self.sent = bytearray()

    async def _pipe(self, reader, writer, up):  # type: ignore[no-untyped-def]
        await super()._pipe(_Tap(reader, self.sent) if up else reader, writer, up)


@pytest.fixture
async def recorded_stack(
    postgres_url: str, redis_url: str, vllm_server: ServedModel
) -> AsyncIterator[tuple[Stack, RecordingProxy]]:
    address = urlsplit(vllm_server.base_url)
    proxy = RecordingProxy(address.hostname or "127.0.0.1", address.port or 80)
    await proxy.start()
    settings = stack_settings(postgres_url, redis_url, f"{proxy.url}/v1", vllm_server.model)
    fast = PreviewPolicy(min_interval=0.05, rtt_factor=1.0, min_new_chars=4)
    try:
        async with running_stack(settings, workers=1, preview_policy=fast) as stack:
            yield stack, proxy
    finally:
        await proxy.stop()


def _user_contents(sent: bytes) -> list[str]:
    """The user messages of every chat completion request in the recorded HTTP traffic."""
    contents = []
    for chunk in sent.split(b"\r\n\r\n")[1:]:
        try:
            body = json.loads(chunk.split(b"POST ")[0])
        except ValueError:
            continue
        contents += [m["content"] for m in body.get("messages", []) if m.get("role") == "user"]
    return contents


async def test_latin_tajik_is_restored_for_the_model_and_answered_in_latin(
    recorded_stack: tuple[Stack, RecordingProxy],
) -> None:
    stack, proxy = recorded_stack
    assert await stack.post_update(text_update(1, CHAT, TYPED)) == 200

    await stack.api.wait_for(lambda: len(stack.api.sent("sendMessage", CHAT)) >= 1, 90)
    assert _user_contents(bytes(proxy.sent)) == [RESTORED]

    async def answered() -> bool:
        return [r.state for r in await stack.request_rows(CHAT)] == [RequestState.ANSWERED]

    await eventually(answered)
    [question, stored] = await stack.messages(CHAT)
    assert question.role is Role.USER and question.text == RESTORED and question.typed_text == TYPED
    [answer] = [call.params["text"] for call in stack.api.sent("sendMessage", CHAT)]
    assert any(ch in CYRILLIC_LETTERS for ch in stored.text), "the model wrote no Cyrillic to transliterate"
    assert not any(ch in CYRILLIC_LETTERS for ch in answer)
    drafts = [call.params["text"] for call in stack.api.sent("sendMessageDraft", CHAT)]
    assert drafts and not any(ch in CYRILLIC_LETTERS for draft in drafts for ch in draft)
