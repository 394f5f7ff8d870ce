"""Hostile and broken MO and delivery-report requests against the real SMS endpoint and the real pipeline.

Whatever arrives, the bot never answers 5xx to what can never become valid (smsbox would ask again forever),
stays up, keeps its memory bounded, and answers a normal message afterwards. The server, the pipeline
(PostgreSQL, real Redis) and the delivery loop run on an event loop of their own, so hypothesis drives plain requests.
"""

from __future__ import annotations

import asyncio
import base64
import threading
import time
from collections.abc import Awaitable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote_from_bytes

import aiohttp
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from yarl import URL

from bot.channels.sms import CHANNEL, SmsChannel, sms_turn_options
from bot.delivery import DeliveryLoop
from bot.http import build_http_app
from bot.services import Services
from bot.store.models import Conversation, OutboundSms, Request, User
from inference.queue import ReplyEvent, ReplyKind
from soro.ports import free_port
from tests.bot.channels.sms.conftest import NO_MODEL, assert_private
from tests.support.stack import stack_settings

T = TypeVar("T")
SECRET = "fuzz-secret-0123456789abcdef"
# A few real numbers, so that some requests go all the way through the pipeline (and its quotas).
NUMBERS = ["+992901110001", "+992901110002", "+992901110003"]
MO_EXAMPLES, GET_EXAMPLES, DLR_EXAMPLES = 5000, 2500, 2500  # 10,000 in all
RSS_GROWTH_LIMIT = 150 * 2**20
FUZZ = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)


def rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


@dataclass
class Endpoint:
    """The bot's HTTP server and SMS channel on a loop in a thread of their own."""

    loop: asyncio.AbstractEventLoop
    services: Services
    base_url: str
    http: aiohttp.ClientSession

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def status(self, method: str, url: str, body: bytes = b"", headers: dict[str, str] | None = None) -> int:
        return self.run(self._request(method, url, body, headers or {}))

    async def _request(self, method: str, url: str, body: bytes, headers: dict[str, str]) -> int:
        async with self.http.request(method, URL(url, encoded=True), data=body, headers=headers) as response:
            await response.read()
            return response.status


@pytest.fixture
def endpoint(postgres_url: str, redis_url: str) -> Iterator[Endpoint]:
    """On PostgreSQL, which refuses what SQLite lets through (over-long keys, NUL characters)."""
    url = postgres_url
    port = free_port()
    values: dict[str, Any] = {
        "http_port": port,
        "sms_kannel_url": f"http://127.0.0.1:{free_port()}",  # nothing listens: the dispatcher is not run
        "sms_sender": "1234",
        "sms_mo_secret": SECRET,
        "sms_dlr_base_url": f"http://127.0.0.1:{port}",
        "user_messages_per_minute": 20,
    }
    config = stack_settings(url, redis_url, NO_MODEL, "soro", **values)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    stop = asyncio.Event()

    async def start() -> tuple[Services, web.AppRunner, aiohttp.ClientSession, asyncio.Task[None]]:
        services = Services.create(config, {CHANNEL: sms_turn_options(config)})
        channel = SmsChannel(config, services)
        app = build_http_app(services.metrics.registry, {"database": services.check_database}, channel.routes())
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        delivery = DeliveryLoop(config, services.pipeline, services.queue, {CHANNEL: channel.sender}, services.metrics)
        return services, runner, aiohttp.ClientSession(), asyncio.create_task(delivery.run(stop))

    def call(coroutine: Awaitable[T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(60)  # type: ignore[arg-type]

    services, runner, http, delivery = call(start())
    try:
        yield Endpoint(loop, services, f"http://127.0.0.1:{port}", http)
    finally:

        async def close() -> None:
            stop.set()
            await delivery
            await http.close()
            await runner.cleanup()
            keys = [key async for key in services.redis.scan_iter(f"{config.stream_prefix}:*")]
            if keys:
                await services.redis.delete(*keys)
            await services.close()

        call(close())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def basic(password: str, user: str = "kannel") -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


printable = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80)
# Message bytes: mostly short, sometimes long runs (a 4,000-character UCS-2 question is 8,000 bytes).
message_bytes = st.one_of(
    st.binary(max_size=200),
    st.sampled_from(["Салом", "Привет", "Hello", "НАВ", "STOP", "😀", ""]).map(str.encode),
    st.builds(lambda unit, count: unit * count, st.binary(min_size=1, max_size=4), st.integers(1, 5000)),
    st.sampled_from(["utf-16-be", "utf-8", "cp1251"]).flatmap(
        lambda codec: st.text(max_size=100).map(
            lambda t: t.encode(codec, errors="surrogatepass" if "16" in codec else "replace")
        )
    ),
)
ids = st.one_of(st.uuids().map(str), printable, st.text(max_size=70), st.just("x" * 58))
senders = st.one_of(st.sampled_from(NUMBERS), printable, st.sampled_from(["Tcell", "", "+", "0" * 20, "+99290"]))
codings = st.one_of(st.sampled_from(["0", "1", "2", "", "-1", "99999999999999999999"]), printable)
charsets = st.one_of(
    st.sampled_from(["UTF-8", "UTF-16BE", "8-BIT", "", "windows-1251", "utf-32", "x" * 200]), printable
)
credentials: st.SearchStrategy[dict[str, str]] = st.one_of(
    st.just({"Authorization": basic(SECRET)}),
    st.just({"Authorization": basic(SECRET)}),  # most requests get past the door
    printable.map(lambda password: {"Authorization": basic(password)}),
    printable.map(lambda header: {"Authorization": header}),
    st.just({}),
)
junk_query = st.text(st.sampled_from("abc=&%+;#?/:0129ZzАb"), max_size=40)


def query(values: dict[str, bytes], junk: str) -> str:
    return "&".join(f"{key}={quote_from_bytes(value, safe='')}" for key, value in values.items()) + junk


@pytest.mark.slow
def test_fuzzed_mo_dlr_requests_never_get_5xx_and_a_normal_message_is_answered_afterwards(
    endpoint: Endpoint, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO")
    started, rss_before = time.monotonic(), rss_bytes()
    statuses: dict[int, int] = {}

    def seen(status: int) -> None:
        statuses[status] = statuses.get(status, 0) + 1
        assert status < 500, f"{status} for input that can never become valid"

    @settings(FUZZ, max_examples=MO_EXAMPLES)
    @given(credentials, ids, senders, codings, charsets, message_bytes, junk_query, st.booleans())
    def post_mo(
        auth: dict[str, str], gid: str, sender: str, coding: str, charset: str, body: bytes, junk: str, typed: bool
    ) -> None:
        headers = {**auth, "X-Kannel-From": sender, "X-Kannel-Coding": coding}
        if typed:
            headers["Content-Type"] = f'text/plain; charset="{charset}"'
        values = {"id": gid.encode(), "coding": coding.encode(), "charset": charset.encode()}
        seen(endpoint.status("POST", f"{endpoint.base_url}/sms/kannel?{query(values, junk)}", body, headers))

    @settings(FUZZ, max_examples=GET_EXAMPLES)
    @given(st.sampled_from([SECRET, SECRET, "", "wrong"]), ids, senders, codings, charsets, message_bytes, junk_query)
    def get_mo(secret: str, gid: str, sender: str, coding: str, charset: str, text: bytes, junk: str) -> None:
        values = {"secret": secret.encode(), "id": gid.encode(), "from": sender.encode(), "text": text[:6000]}
        values |= {"coding": coding.encode(), "charset": charset.encode()}
        seen(endpoint.status("GET", f"{endpoint.base_url}/sms/kannel?{query(values, junk)}"))

    numbers = st.one_of(st.integers(-(2**70), 2**70).map(str), printable, st.just("9" * 5000))
    dlr_types = st.one_of(st.sampled_from(["1", "2", "4", "8", "16", "3", ""]), numbers)

    @settings(FUZZ, max_examples=DLR_EXAMPLES)
    @given(credentials, numbers, dlr_types, printable, junk_query, st.booleans())
    def dlr(auth: dict[str, str], sms_id: str, kind: str, smsc_id: str, junk: str, post: bool) -> None:
        values = {"id": sms_id.encode(), "type": kind.encode(), "smsc_id": smsc_id.encode()}
        url = f"{endpoint.base_url}/sms/kannel/dlr?{query(values, junk)}"
        seen(endpoint.status("POST" if post else "GET", url, b"", auth))

    post_mo()
    get_mo()
    dlr()
    assert sum(statuses.values()) >= 0.95 * (MO_EXAMPLES + GET_EXAMPLES + DLR_EXAMPLES)  # it may stop a little early
    total = sum(statuses.values())
    assert min(statuses.get(200, 0), statuses.get(400, 0), statuses.get(403, 0)) > total // 20, "a path never taken"
    assert rss_bytes() - rss_before < RSS_GROWTH_LIMIT, "memory grew without bound"

    # Still alive, and still answering: a plain question becomes a turn, and its answer reaches the outbox.
    number = "+992909998877"
    headers = {"Authorization": basic(SECRET), "X-Kannel-From": number}
    body = "Пойтахти Тоҷикистон кадом шаҳр аст?".encode("utf-16-be")
    assert endpoint.status("POST", f"{endpoint.base_url}/sms/kannel?id=after-fuzz&coding=2", body, headers) == 200
    assert endpoint.status("GET", f"{endpoint.base_url}/healthz") == 200
    answer = endpoint.run(answer_of(endpoint.services, number))
    assert answer == "Душанбе."
    assert_private(caplog.text, [SECRET], [*NUMBERS, number], ["Пойтахти Тоҷикистон кадом"])
    print(f"fuzz: {total} requests in {time.monotonic() - started:.1f}s, statuses {statuses}")


async def answer_of(services: Services, number: str) -> str:
    """Answer the number's open turn the way a worker would; the text the outbox then holds for it."""
    async with services.sessions() as session:
        request = (
            await session.scalars(
                select(Request)
                .join(Conversation, Conversation.id == Request.conversation_id)
                .join(User, User.id == Conversation.user_id)
                .where(User.channel == CHANNEL, User.address == number)
            )
        ).one()
    event = ReplyEvent(request.id, request.conversation_id, CHANNEL, ReplyKind.FINAL, text="Душанбе.", model="test")
    await services.queue.publish(event, services.queue.names.replies(CHANNEL))
    for _ in range(200):
        async with services.sessions() as session:
            row = (await session.scalars(select(OutboundSms).where(OutboundSms.request_id == request.id))).first()
        if row is not None:
            assert row.address == number
            return row.text
        await asyncio.sleep(0.05)
    raise AssertionError("the answer never reached the outbox")
