"""A local stand-in of Telegram's Bot API, reached by aiogram through ``TelegramAPIServer``.

It answers like Telegram does (``{"ok": true, "result": …}``, 429 with ``parameters.retry_after``), serves
``getUpdates`` from updates the test feeds it, and records every call so tests can assert on what a user saw.

It can also play Telegram's side of a webhook: ``deliver`` queues an update, which is POSTed to the URL and
with the secret that the bot registered with ``setWebhook``, and posted again, with growing pauses, while the
bot answers 5xx or cannot be reached. For outages, ``fail_for`` makes calls answer 429 or 5xx for a while, and
``cut``/``restore`` (after ``start(link=True)``) make Telegram unreachable both ways, as when the
international link is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from tests.support.proxy import TcpProxy

PRIVATE_CHAT_ID = 1001


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    at: float = field(default_factory=time.monotonic)
    failed: int | None = None  # HTTP status of an injected failure
    content_type: str = ""
    body_bytes: int = 0
    head_bytes: int = 0  # request line and headers, as they came over the wire
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def wire_bytes(self) -> int:
        return self.head_bytes + self.body_bytes


@dataclass
class Failure:
    methods: frozenset[str]  # empty: every method
    status: int
    retry_after: int | None
    remaining: int
    until: float | None = None  # a failure for a while (monotonic time) rather than for a number of calls

    def applies(self, method: str, now: float) -> bool:
        if self.methods and method not in self.methods:
            return False
        if self.until is not None:
            return now < self.until
        return self.remaining > 0


@dataclass
class WebhookDelivery:
    """One update on its way to the bot, as Telegram delivers it: until the bot answers 2xx, or refuses it."""

    update: dict[str, Any]
    queued_at: float = field(default_factory=time.monotonic)
    attempts: int = 0
    statuses: list[int | None] = field(default_factory=list)  # None: the bot could not be reached
    accepted_at: float | None = None
    refused: int | None = None  # a 4xx: Telegram gives the update up
    done: asyncio.Event = field(default_factory=asyncio.Event)


class BotApiStandIn:
    def __init__(self, token: str = "123456:TEST") -> None:
        self.token = token
        self.calls: list[Call] = []
        self.failures: list[Failure] = []
        self.updates: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.update_ids = itertools.count(1)
        self.message_ids = itertools.count(1)
        self.latency = 0.0
        self.changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.by_chat: defaultdict[int, list[Call]] = defaultdict(list)
        self.webhook_url = ""
        self.webhook_secret = ""
        self.deliveries: list[WebhookDelivery] = []
        self.max_webhook_connections = 40  # Telegram's default for setWebhook
        self.webhook_give_up_seconds = 900.0
        self._outbox: asyncio.Queue[WebhookDelivery] = asyncio.Queue()
        self._deliverers: list[asyncio.Task[None]] = []
        self._http: aiohttp.ClientSession | None = None
        self._link: TcpProxy | None = None
        self.reachable = True
        self.cuts: list[float] = []  # when ``cut`` took the link down (monotonic)

    @property
    def base(self) -> str:
        """Where the bot reaches the Bot API (through the link, when there is one)."""
        return self._link.url if self._link is not None else f"http://127.0.0.1:{self.port}"

    async def start(self, link: bool = False) -> None:
        """Serve; ``link``: behind a link that ``cut`` and ``restore`` take down and bring back."""
        app = web.Application()
        app.router.add_post("/bot{token}/{method}", self._handle)
        app.router.add_get("/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        if link:
            self._link = TcpProxy("127.0.0.1", self.port)
            await self._link.start()

    async def stop(self) -> None:
        for task in self._deliverers:
            task.cancel()
        await asyncio.gather(*self._deliverers, return_exceptions=True)
        self._deliverers.clear()
        if self._http is not None:
            await self._http.close()
        if self._link is not None:
            await self._link.stop()
        if self._runner is not None:
            await self._runner.cleanup()

    async def cut(self) -> None:
        """Telegram unreachable both ways: the bot's calls fail to connect, and no update reaches the bot."""
        assert self._link is not None, "start(link=True) first"
        self.reachable = False
        self.cuts.append(time.monotonic())
        await self._link.stop()

    async def restore(self) -> None:
        assert self._link is not None
        await self._link.start()
        self.reachable = True

    # What tests do

    def fail(self, *methods: str, status: int = 429, retry_after: int | None = 1, times: int = 1) -> None:
        """Make the next ``times`` calls of ``methods`` fail as Telegram would."""
        self.failures.append(Failure(frozenset(methods), status, retry_after, times))

    def fail_for(self, seconds: float, *methods: str, status: int = 429, retry_after: int | None = 1) -> None:
        """Make every call of ``methods`` (of any method, when none are named) fail so for ``seconds``."""
        until = time.monotonic() + seconds
        self.failures.append(Failure(frozenset(methods), status, retry_after, 0, until))

    def deliver(self, update: dict[str, Any]) -> WebhookDelivery:
        """An update for the webhook: delivered, and retried as Telegram retries it, in the background."""
        if not self._deliverers:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
            self._deliverers = [
                asyncio.create_task(self._deliver_forever()) for _ in range(self.max_webhook_connections)
            ]
        delivery = WebhookDelivery(update)
        self.deliveries.append(delivery)
        self._outbox.put_nowait(delivery)
        return delivery

    async def _deliver_forever(self) -> None:
        while True:
            delivery = await self._outbox.get()
            await self._deliver(delivery)

    async def _deliver(self, delivery: WebhookDelivery) -> None:
        assert self._http is not None
        pause = 0.5
        while time.monotonic() - delivery.queued_at < self.webhook_give_up_seconds:
            status: int | None = None
            if self.reachable and self.webhook_url:
                headers = {"X-Telegram-Bot-Api-Secret-Token": self.webhook_secret} if self.webhook_secret else {}
                try:
                    async with self._http.post(self.webhook_url, json=delivery.update, headers=headers) as response:
                        status = response.status
                        await response.read()
                except (aiohttp.ClientError, OSError, TimeoutError):
                    status = None
                delivery.attempts += 1
                delivery.statuses.append(status)
            if status is not None and status < 300:
                delivery.accepted_at = time.monotonic()
                break
            if status is not None and status < 500:
                delivery.refused = status
                break
            await asyncio.sleep(pause)
            pause = min(pause * 2, 8.0)
        delivery.done.set()

    def feed(self, update: dict[str, Any]) -> None:
        """An update for ``getUpdates`` (polling mode)."""
        self.updates.put_nowait(update)

    def sent(self, method: str, chat_id: int | None = None) -> list[Call]:
        """Successful calls of ``method`` (to ``chat_id``)."""
        return [
            c
            for c in (self.calls if chat_id is None else self.by_chat.get(chat_id, []))
            if c.method == method
            and c.failed is None
            and (chat_id is None or int(c.params.get("chat_id", 0)) == chat_id)
        ]

    def texts(self, chat_id: int) -> list[str]:
        """The messages a user of ``chat_id`` has in their chat, in order (final texts of edited ones)."""
        messages: dict[int, str] = {}
        for call in self.calls:
            if call.failed is not None or int(call.params.get("chat_id", 0)) != chat_id:
                continue
            if call.method == "sendMessage":
                messages[call.params["_message_id"]] = call.params["text"]
            elif call.method == "editMessageText":
                messages[int(call.params["message_id"])] = call.params["text"]
        return [messages[k] for k in sorted(messages)]

    async def wait_for(self, predicate: Any, timeout: float = 60.0) -> None:
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(predicate), timeout)

    # The API

    async def _handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        method = request.match_info["method"]
        params = await _params(request)
        if self.latency:
            await asyncio.sleep(self.latency)
        call = Call(
            method,
            params,
            content_type=request.content_type,
            body_bytes=request.content_length or 0,
            head_bytes=_head_bytes(request),
            headers=dict(request.headers),
        )
        now = time.monotonic()
        for failure in self.failures:
            if failure.applies(method, now):
                failure.remaining -= 1
                call.failed = failure.status
                await self._record(call)
                body: dict[str, Any] = {"ok": False, "error_code": failure.status}
                if failure.status == 429:
                    body["description"] = f"Too Many Requests: retry after {failure.retry_after}"
                    body["parameters"] = {"retry_after": failure.retry_after}
                else:
                    body["description"] = "Internal Server Error"
                return web.json_response(body, status=failure.status)
        if method == "getUpdates":
            return await self._get_updates(params)
        result = self._result(method, params)
        await self._record(call)
        return web.json_response({"ok": True, "result": result})

    async def _record(self, call: Call) -> None:
        async with self.changed:
            self.calls.append(call)
            with contextlib.suppress(TypeError, ValueError):
                self.by_chat[int(call.params.get("chat_id", 0))].append(call)
            self.changed.notify_all()

    async def _get_updates(self, params: dict[str, Any]) -> web.Response:
        timeout = float(params.get("timeout", 0) or 0)
        updates = []
        with contextlib.suppress(TimeoutError):
            updates.append(await asyncio.wait_for(self.updates.get(), timeout=max(timeout, 0.01)))
        while not self.updates.empty():
            updates.append(self.updates.get_nowait())
        return web.json_response({"ok": True, "result": updates})

    def _result(self, method: str, params: dict[str, Any]) -> Any:
        if method == "getMe":
            return {"id": 123456, "is_bot": True, "first_name": "Soro", "username": "soro_test_bot"}
        if method == "setWebhook":
            self.webhook_url = str(params["url"])
            self.webhook_secret = str(params.get("secret_token") or "")
        if method == "deleteWebhook":
            self.webhook_url = self.webhook_secret = ""
        if method in ("sendMessage", "editMessageText"):
            chat_id = int(params["chat_id"])
            if method == "sendMessage":
                params["_message_id"] = next(self.message_ids)
            message_id = params.get("_message_id") or int(params["message_id"])
            if len(params.get("text", "")) > 4096:
                raise web.HTTPBadRequest(
                    text=json.dumps(
                        {"ok": False, "error_code": 400, "description": "Bad Request: message is too long"}
                    ),
                    content_type="application/json",
                )
            chat_type = "private" if chat_id > 0 else "group"
            return {
                "message_id": message_id,
                "date": int(time.time()),
                "chat": {"id": chat_id, "type": chat_type},
                "text": params.get("text", ""),
            }
        return True


def _head_bytes(request: web.Request) -> int:
    """The request's line and headers in bytes: what a call costs beyond its body."""
    line = f"{request.method} {request.raw_path} HTTP/{request.version.major}.{request.version.minor}\r\n"
    return len(line.encode()) + sum(len(name) + len(value) + 4 for name, value in request.raw_headers) + 2


async def _params(request: web.Request) -> dict[str, Any]:
    if request.content_type == "application/json":
        raw: dict[str, Any] = await request.json()
    else:
        raw = dict(await request.post())
    params: dict[str, Any] = {}
    for key, value in raw.items():
        if isinstance(value, str):
            try:
                decoded = json.loads(value)
            except ValueError:
                decoded = value
            params[key] = value if key == "text" else decoded
        else:
            params[key] = value
    return params


def text_update(update_id: int, chat_id: int, text: str, user_id: int | None = None) -> dict[str, Any]:
    """A Telegram update carrying a text message, as the webhook receives it."""
    user_id = user_id or abs(chat_id)
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "group"},
            "from": {"id": user_id, "is_bot": False, "first_name": "Test"},
            "text": text,
            **(
                {"entities": [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]}
                if text.startswith("/")
                else {}
            ),
        },
    }


def sticker_update(update_id: int, chat_id: int) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private"},
            "from": {"id": chat_id, "is_bot": False, "first_name": "Test"},
            "sticker": {
                "file_id": "CAAC",
                "file_unique_id": "AgAD",
                "type": "regular",
                "width": 512,
                "height": 512,
                "is_animated": False,
                "is_video": False,
            },
        },
    }


def callback_update(
    update_id: int, chat_id: int, message_id: int, data: str, user_id: int | None = None
) -> dict[str, Any]:
    """A tap on an inline button under the bot's message ``message_id``, by ``user_id``."""
    user_id = user_id or abs(chat_id)
    return {
        "update_id": update_id,
        "callback_query": {
            "id": f"cb-{update_id}",
            "from": {"id": user_id, "is_bot": False, "first_name": "Test"},
            "chat_instance": str(chat_id),
            "data": data,
            "message": {
                "message_id": message_id,
                "date": int(time.time()),
                "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "group"},
                "from": {"id": 123456, "is_bot": True, "first_name": "Soro"},
                "text": "…",
            },
        },
    }


def reply_update(
    update_id: int, chat_id: int, replied_to: int, text: str, user_id: int | None = None
) -> dict[str, Any]:
    """A text message that replies to the bot's message ``replied_to``."""
    update = text_update(update_id, chat_id, text, user_id)
    update["message"]["reply_to_message"] = {
        "message_id": replied_to,
        "date": int(time.time()),
        "chat": update["message"]["chat"],
        "from": {"id": 123456, "is_bot": True, "first_name": "Soro"},
        "text": "…",
    }
    return update
