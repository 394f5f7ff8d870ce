"""Hostile but authenticated webhook bodies against the real webhook app, dispatcher, PostgreSQL and Redis.

Telegram retries every 5xx for hours, so a body that can never become valid must get a 4xx, or 200 and be
ignored. Each test drives one family of such bodies through real HTTP, then checks that the server is still
up, that its memory stayed bounded, and that an ordinary user is still served.

The server runs on an event loop of its own in a thread, so hypothesis can drive it from a plain test
function over a kept-alive HTTP connection (hypothesis does not run async tests itself).
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import itertools
import json
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from bot.app import telegram_bot, telegram_dispatcher
from bot.http import WEBHOOK_PATH, build_http_app, telegram_webhook
from bot.services import Services
from bot.store.models import Request
from bot.texts import T, text
from soro.settings import Settings
from tests.support.stack import WEBHOOK_SECRET, stack_settings
from tests.support.telegram_api import BotApiStandIn, text_update

R = TypeVar("R")

# RSS the server may gain over a whole test: the stand-in's record of calls and the caches grow a little; a
# body parsed into a huge structure, or a leak per request, would not stay under this.
RSS_GROWTH_LIMIT = 200 * 1024 * 1024

COMMON = settings(
    deadline=None,
    database=None,  # nothing written into the repository
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)


def _rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


@dataclass
class WebhookServer:
    """The bot's HTTP app with the Telegram webhook, on PostgreSQL and Redis, answering into the stand-in."""

    settings: Settings
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    api: BotApiStandIn = field(default_factory=BotApiStandIn)
    services: Services | None = None
    runner: web.AppRunner | None = None
    ids: Iterator[int] = field(default_factory=lambda: itertools.count(10**9))
    _thread: threading.Thread | None = None
    _connection: http.client.HTTPConnection | None = None

    def run(self, coroutine: Coroutine[Any, Any, R], timeout: float = 30) -> R:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.loop.run_forever, name="webhook-server", daemon=True)
        self._thread.start()
        self.run(self._start())

    async def _start(self) -> None:
        await self.api.start()
        self.settings = self.settings.model_copy(update={"telegram_api_base": self.api.base})
        self.services = Services.create(self.settings)
        bot, _ = telegram_bot(self.settings, self.services)
        dispatcher = telegram_dispatcher(self.services)
        app = build_http_app(
            self.services.metrics.registry,
            {"database": self.services.check_database, "redis": self.services.check_redis},
            [telegram_webhook(dispatcher, bot, WEBHOOK_SECRET, self.services.pipeline)],
        )
        app.on_cleanup.append(lambda _: bot.session.close())
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.settings.http_port).start()

    def stop(self) -> None:
        if self._connection is not None:
            self._connection.close()
        with contextlib.suppress(Exception):
            self.run(self._stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self.loop.close()

    async def _stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
        if self.services is not None:
            prefix = self.settings.stream_prefix
            keys = [key async for key in self.services.redis.scan_iter(f"{prefix}:*")]
            if keys:
                await self.services.redis.delete(*keys)
            await self.services.close()
        await self.api.stop()

    def post(self, body: bytes, path: str = WEBHOOK_PATH, method: str = "POST") -> int:
        """One request on a kept-alive connection (a fresh one when the server closed it)."""
        headers = {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET}
        for attempt in range(2):
            if self._connection is None:
                self._connection = http.client.HTTPConnection("127.0.0.1", self.settings.http_port, timeout=30)
            try:
                self._connection.request(method, path, body=body, headers=headers)
                response = self._connection.getresponse()
                response.read()
                if response.getheader("Connection", "").lower() == "close":
                    self._connection.close()
                    self._connection = None
                return response.status
            except (ConnectionError, http.client.HTTPException):
                self._connection.close()
                self._connection = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def post_json(self, update: Any) -> int:
        # ensure_ascii writes a lone surrogate as a \\ud800 escape: valid JSON, as Telegram would send it.
        return self.post(json.dumps(update, ensure_ascii=True).encode())

    async def _requests(self) -> int:
        assert self.services is not None
        async with self.services.sessions() as session:
            return int(await session.scalar(select(func.count()).select_from(Request)) or 0)

    def still_serves_a_user(self) -> None:
        """Alive, healthy, and an ordinary user is answered: a command at once, a question queued for a worker."""
        assert self.post(b"", path="/healthz", method="GET") == 200
        chat = next(self.ids) % 10**6 + 7_000_000
        assert self.post_json(text_update(next(self.ids), chat, "/help")) == 200
        self.run(self.api.wait_for(lambda: bool(self.api.sent("sendMessage", chat)), timeout=10))
        assert self.api.sent("sendMessage", chat)[-1].params["text"] == text(T.HELP, "tg")
        before = self.run(self._requests())
        assert self.post_json(text_update(next(self.ids), chat, "Салом! Пойтахти Тоҷикистон кадом шаҳр аст?")) == 200
        assert self.run(self._requests()) == before + 1, "a normal question is no longer stored and queued"


@pytest.fixture
def server(postgres_url: str, redis_url: str, stream_prefix: str) -> Iterator[WebhookServer]:
    # The model server is never called: no worker runs here, questions wait in the stream.
    # Polite answers to thousands of fuzzed chats must not wait on the outbound rate limits.
    configured = stack_settings(
        postgres_url,
        redis_url,
        "http://127.0.0.1:9/v1",
        "soro",
        stream_prefix=stream_prefix,
        telegram_global_rate=100_000.0,
        telegram_chat_rate=100_000.0,
    )
    running = WebhookServer(configured)
    running.start()
    try:
        yield running
    finally:
        running.stop()


# Strategies

SURROGATE = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
# Text as a hostile client could put it in JSON: any code point, lone surrogates included.
ANY_TEXT = st.lists(st.one_of(st.characters(), SURROGATE), max_size=40).map("".join)
WITH_SURROGATE = st.tuples(st.text(max_size=20), SURROGATE, ANY_TEXT).map("".join)
HUGE_INT = st.one_of(
    st.integers(min_value=2**63, max_value=10**120), st.integers(min_value=-(10**120), max_value=-(2**63))
)
# A value of any JSON type, for a field that should hold another one.
SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    HUGE_INT,
    st.floats(allow_nan=False, allow_infinity=False),
    ANY_TEXT,
)
ANY_JSON = st.recursive(
    SCALAR,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(ANY_TEXT, children, max_size=4)),
    max_leaves=8,
)
UPDATE_ID = st.one_of(st.integers(min_value=0, max_value=2**31), HUGE_INT, ANY_JSON)
CHAT_ID = st.one_of(st.integers(min_value=1, max_value=2**40), st.integers(min_value=-(2**40), max_value=-1), HUGE_INT)


def _message(update_id: Any, chat_id: Any, **content: Any) -> dict[str, Any]:
    return {
        "message_id": update_id if isinstance(update_id, int) else 1,
        "date": 1_700_000_000,
        "chat": {"id": chat_id, "type": "private" if isinstance(chat_id, int) and chat_id > 0 else "group"},
        "from": {"id": chat_id if isinstance(chat_id, int) else 1, "is_bot": False, "first_name": "Fuzz"},
        **content,
    }


def _command(name: str, rest: str) -> dict[str, Any]:
    command = f"/{name}"
    return {"text": f"{command} {rest}", "entities": [{"type": "bot_command", "offset": 0, "length": len(command)}]}


STICKER = {
    "sticker": {
        "file_id": "CAAC",
        "file_unique_id": "AgAD",
        "type": "regular",
        "width": 512,
        "height": 512,
        "is_animated": False,
        "is_video": False,
    }
}
CONTENT = st.one_of(
    st.builds(lambda t: {"text": t}, ANY_TEXT),
    st.just(STICKER),
    st.builds(_command, st.text(alphabet="abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1, max_size=40), ANY_TEXT),
    st.builds(lambda v: {"text": v}, ANY_JSON),  # text of a wrong type
    st.builds(
        lambda t: {"caption": t, "photo": [{"file_id": "x", "file_unique_id": "y", "width": 1, "height": 1}]}, ANY_TEXT
    ),
    st.just({}),  # a message with nothing in it
)


@st.composite
def wrong_updates(draw: st.DrawFn) -> Any:
    """Updates shaped like Telegram's with something wrong: types, sizes, missing or unknown fields."""
    update_id = draw(UPDATE_ID)
    chat_id = draw(CHAT_ID)
    message = _message(update_id, chat_id, **draw(CONTENT))
    for key in draw(st.sets(st.sampled_from(sorted(message)), max_size=2)):
        del message[key]
    for key in draw(st.sets(st.sampled_from(["chat", "from", "date", "message_id"]), max_size=1)):
        if key in message:
            message[key] = draw(ANY_JSON)
    kind = draw(st.sampled_from(["message", "edited_message", "channel_post", "unknown_kind"]))
    update: dict[str, Any] = {"update_id": update_id, kind: message}
    if draw(st.booleans()):
        update[draw(ANY_TEXT)] = draw(ANY_JSON)
    if draw(st.integers(0, 9)) == 0:
        del update["update_id"]
    return update


@st.composite
def callback_updates(draw: st.DrawFn) -> dict[str, Any]:
    """The language menu's buttons pressed with data and ids no Telegram client would send."""
    chat_id = draw(CHAT_ID)
    data = draw(
        st.one_of(WITH_SURROGATE.map(lambda t: "lang:" + t), WITH_SURROGATE, ANY_TEXT.map(lambda t: "lang:" + t))
    )
    return {
        "update_id": draw(st.integers(min_value=0, max_value=2**31)),
        "callback_query": {
            "id": draw(st.one_of(st.text(alphabet="0123456789", min_size=1, max_size=20), WITH_SURROGATE)),
            "from": {"id": 5, "is_bot": False, "first_name": "Fuzz"},
            "chat_instance": "1",
            "data": data,
            "message": _message(1, chat_id, text="Забонро интихоб кунед:"),
        },
    }


def _nested(depth: int, opener: str) -> bytes:
    inner = "[" * depth + "1" + "]" * depth if opener == "[" else '{"a":' * depth + "1" + "}" * depth
    return ('{"update_id": 7, "message": ' + inner + "}").encode()


NESTED = st.builds(_nested, st.integers(min_value=1_000, max_value=60_000), st.sampled_from(["[", "{"]))
NOT_AN_UPDATE = st.one_of(
    st.binary(max_size=200),  # not JSON, or not UTF-8
    ANY_JSON.map(lambda v: json.dumps(v).encode()),  # JSON, but no object
    st.builds(lambda t: ('{"update_id": 1, "message": {"text": "' + t).encode("utf-8", "surrogatepass"), ANY_TEXT),
)


def fuzz(server: WebhookServer, strategy: st.SearchStrategy[Any], examples: int, raw: bool = False) -> None:
    """Post ``examples`` bodies drawn from ``strategy``: none may get a 5xx. Then the server must still be alive,
    within its memory bound, and serving users."""
    rss = _rss()

    @settings(COMMON, max_examples=examples)
    @given(body=strategy)
    def post(body: Any) -> None:
        status = server.post(body) if raw else server.post_json(body)
        assert status < 500, f"HTTP {status} for {body!r:.300}"

    post()
    server.still_serves_a_user()
    grown = _rss() - rss
    assert grown < RSS_GROWTH_LIMIT, f"RSS grew by {grown / 2**20:.0f} MiB"


# 10,500 examples together.


def test_structured_but_wrong_updates_never_get_a_5xx(server: WebhookServer) -> None:
    fuzz(server, wrong_updates(), 5000)


def test_stickers_and_unknown_commands_are_answered_politely(server: WebhookServer) -> None:
    contents = st.one_of(
        st.just(STICKER),
        st.builds(
            _command, st.text(alphabet="abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1, max_size=40), ANY_TEXT
        ),
    )
    ids = itertools.count(1)
    fuzz(
        server, st.builds(lambda c: {"update_id": next(ids), "message": _message(next(ids), 4242, **c)}, contents), 500
    )


def test_lone_surrogates_in_message_text(server: WebhookServer) -> None:
    ids = itertools.count(1)
    updates = st.builds(lambda t, chat: text_update(next(ids), chat, t), WITH_SURROGATE, st.integers(1, 2**40))
    fuzz(server, updates, 700)


def test_lone_surrogates_in_callback_data(server: WebhookServer) -> None:
    fuzz(server, callback_updates(), 1500)


def test_update_ids_longer_than_64_characters(server: WebhookServer) -> None:
    updates = st.builds(
        lambda i, chat: text_update(i, chat, "Салом"), st.integers(min_value=10**64, max_value=10**200), CHAT_ID
    )
    fuzz(server, updates, 1000)


def test_json_nested_thousands_deep(server: WebhookServer) -> None:
    fuzz(server, NESTED, 1000, raw=True)


def test_bodies_that_are_no_update_at_all(server: WebhookServer) -> None:
    fuzz(server, NOT_AN_UPDATE, 1000, raw=True)
