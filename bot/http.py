"""The bot's HTTP server: the Telegram webhook, channel endpoints, liveness, readiness and metrics."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import partial
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.exceptions import TelegramAPIError
from aiogram.types import Update
from aiogram.types.update import UpdateTypeLookupError
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import ValidationError

from bot.channels.telegram.router import plain_text, take_turn
from bot.pipeline import Pipeline
from soro.outage import dependency_of

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/telegram/webhook"
_OK = b'{"ok":true}'
HealthCheck = Callable[[], Awaitable[None]]
# What a channel says of itself on /readyz: "" when all is well, else what is degraded and why.
StatusProbe = Callable[[], str]
CHECK_TIMEOUT_SECONDS = 2.0

# Telegram's ids fit in 64 bits; a longer number can never be a valid update (and would not fit its column).
_MAX_INT_DIGITS = 19
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_LONG_NUMBER = re.compile(rb"\d{%d}" % (_MAX_INT_DIGITS + 1))


class MalformedUpdate(ValueError):
    pass


def _parse_int(digits: str) -> int:
    if len(digits.lstrip("-")) > _MAX_INT_DIGITS:
        raise MalformedUpdate("number out of range")
    return int(digits)


def _repair_strings(value: Any) -> Any:
    """Lone UTF-16 surrogates (a JSON ``\\ud800`` escape without its pair) can be neither stored nor sent
    back: each becomes U+FFFD, the rest of the text is kept."""
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_repair_strings(item) for item in value]
    if isinstance(value, dict):
        return {_repair_strings(key): _repair_strings(item) for key, item in value.items()}
    return value


def parse_update_body(body: bytes) -> Any:
    """The JSON of a webhook body, or ``MalformedUpdate`` for one that can never become a valid update."""
    try:
        # Only a body with a run of digits too long for any id needs every number looked at (in Python).
        data = json.loads(body, parse_int=_parse_int) if _LONG_NUMBER.search(body) else json.loads(body)
    except RecursionError as exc:  # nested thousands deep
        raise MalformedUpdate("too deeply nested") from exc
    except ValueError as exc:  # not JSON, not UTF-8, numbers out of range
        raise MalformedUpdate(str(exc)) from exc
    # Escapes are the only way a lone surrogate gets in: look for them before walking the whole update.
    if _SURROGATE_ESCAPE.search(body):
        data = _repair_strings(data)
    return data


def telegram_webhook(dispatcher: Dispatcher, bot: Bot, secret: str, pipeline: Pipeline) -> web.RouteDef:
    """200 only once the update is stored and enqueued; a failure that a retry can heal is a 5xx, so Telegram
    retries it; an update that can never be valid is refused for good with a 400. A plain text message goes
    straight to its turn (``plain_text``), every other update through the dispatcher."""

    async def handle(request: web.Request) -> web.Response:
        given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
        if not hmac.compare_digest(given.encode(), secret.encode()):
            return web.json_response({"ok": False, "error": "wrong secret token"}, status=401)
        try:
            data = parse_update_body(await request.read())
            plain = plain_text(data)
            update = None if plain is not None else Update.model_validate(data, context={"bot": bot})
        except (MalformedUpdate, ValidationError):
            log.warning("malformed update refused")
            return web.json_response({"ok": False, "error": "malformed update"}, status=400)
        try:
            if plain is not None:
                chat_id, message_text = plain
                await take_turn(
                    pipeline, chat_id, message_text, str(data["update_id"]), partial(bot.send_message, chat_id)
                )
                return web.Response(body=_OK, content_type="application/json")
            assert update is not None
            try:
                update.event_type  # noqa: B018  (raises for a kind of update this aiogram does not know)
            except UpdateTypeLookupError:
                # Newer than this aiogram, or junk: acknowledged, so Telegram does not retry it forever.
                log.info("update %s of an unknown kind ignored", update.update_id)
                return web.Response(body=_OK, content_type="application/json")
            await dispatcher.feed_update(bot, update)
        except TelegramAPIError as exc:
            # A reply the Bot API refused (flood control past its patience, an unreachable API). What the
            # update changed is committed and each reply is made once per update, so a retry of the update
            # would not bring it back: a 5xx would only hold up the chat's next updates.
            log.warning("reply to update %s not sent: %s", data.get("update_id"), exc)
        except Exception as exc:
            if dependency_of(exc) is None:
                raise
            # Logged once per outage by the loops that watch it; Telegram retries the update.
            return web.json_response({"ok": False, "error": "temporarily unavailable"}, status=503)
        return web.Response(body=_OK, content_type="application/json")

    return web.post(WEBHOOK_PATH, handle)


def build_http_app(
    registry: CollectorRegistry,
    health_checks: Mapping[str, HealthCheck],
    routes: Sequence[web.RouteDef] = (),
    probes: Mapping[str, StatusProbe] | None = None,
) -> web.Application:
    """``/healthz``: the process is alive (for restarts). ``/readyz``: 200 while messages can be accepted
    (database and Redis reachable), with what is degraded (Telegram unreachable, say) listed; 503 otherwise."""
    checks = dict(health_checks)
    channel_probes = dict(probes or {})

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def run_check(check: HealthCheck) -> str:
        try:
            await asyncio.wait_for(check(), CHECK_TIMEOUT_SECONDS)
        except Exception as exc:
            return f"unreachable ({type(exc).__name__})"
        return ""

    async def readyz(_: web.Request) -> web.Response:
        results = await asyncio.gather(*(run_check(check) for check in checks.values()))
        failed = {name: problem for name, problem in zip(checks, results, strict=True) if problem}
        degraded = {name: problem for name, probe in channel_probes.items() if (problem := probe())}
        ready = not failed
        return web.json_response({"ok": ready, "failed": failed, "degraded": degraded}, status=200 if ready else 503)

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    # Request lines up to 32 KiB: an SMS gateway's get-url of a 4,000-character question is about 24 KiB.
    app = web.Application(client_max_size=1 << 20, handler_args={"max_line_size": 1 << 15})
    app.add_routes([web.get("/healthz", healthz), web.get("/readyz", readyz), web.get("/metrics", metrics), *routes])
    return app
