"""The bot's HTTP server: the Telegram webhook, channel endpoints, health and metrics."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable, Sequence

from aiogram import Bot, Dispatcher
from aiogram.types import Update
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import ValidationError

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/telegram/webhook"
HealthCheck = Callable[[], Awaitable[None]]


def telegram_webhook(dispatcher: Dispatcher, bot: Bot, secret: str) -> web.RouteDef:
    """200 only once the update is stored and enqueued; any failure is a 5xx, so Telegram retries it."""

    async def handle(request: web.Request) -> web.Response:
        given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
        if not hmac.compare_digest(given.encode(), secret.encode()):
            return web.json_response({"ok": False, "error": "wrong secret token"}, status=401)
        try:
            update = Update.model_validate(await request.json(), context={"bot": bot})
        except (ValueError, ValidationError):
            # Retrying a malformed body would not make it valid: refuse it for good.
            log.warning("malformed update refused")
            return web.json_response({"ok": False, "error": "malformed update"}, status=400)
        await dispatcher.feed_update(bot, update)
        return web.json_response({"ok": True})

    return web.post(WEBHOOK_PATH, handle)


def build_http_app(
    registry: CollectorRegistry, health_checks: Sequence[HealthCheck], routes: Sequence[web.RouteDef] = ()
) -> web.Application:
    async def healthz(_: web.Request) -> web.Response:
        try:
            for check in health_checks:
                await check()
        except Exception as exc:
            return web.json_response({"ok": False, "error": type(exc).__name__}, status=503)
        return web.json_response({"ok": True})

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    # Request lines up to 32 KiB: an SMS gateway's get-url of a 4,000-character question is about 24 KiB.
    app = web.Application(client_max_size=1 << 20, handler_args={"max_line_size": 1 << 15})
    app.add_routes([web.get("/healthz", healthz), web.get("/metrics", metrics), *routes])
    return app
