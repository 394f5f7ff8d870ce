"""Keeping the bot connected to Telegram: the webhook set (or polling running) whenever Telegram is reachable.

The international link may be down when the bot starts, or go down later. The bot must start anyway, serve
SMS, health and readiness, and set its webhook as soon as Telegram answers: ``TelegramLink.run`` retries in
the background with capped back-off, logging once per outage, and says on ``/readyz`` what it is waiting for.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from aiogram import Bot, Dispatcher
from aiogram.exceptions import TelegramNetworkError, TelegramRetryAfter, TelegramServerError

from soro.outage import pause

log = logging.getLogger(__name__)

UNREACHABLE = (TelegramNetworkError, TelegramServerError, TelegramRetryAfter, OSError, asyncio.TimeoutError)


class TelegramLink:
    def __init__(
        self,
        bot: Bot,
        dispatcher: Dispatcher,
        webhook_url: str,
        secret: str,
        max_delay: float = 60.0,
    ) -> None:
        self.bot = bot
        self.dispatcher = dispatcher
        self.webhook_url = webhook_url
        self.secret = secret
        self.max_delay = max_delay
        self.connected = False
        self.problem = "connecting"
        self.polling: asyncio.Task[None] | None = None

    def status(self) -> str:
        """What /readyz shows: empty once the webhook is set or polling runs."""
        return "" if self.connected else self.problem

    async def run(self, stop: asyncio.Event) -> None:
        delay = 1.0
        since: float | None = None
        while not stop.is_set():
            try:
                await self._connect()
            except UNREACHABLE as exc:
                if since is None:
                    since = time.monotonic()
                    log.warning("Telegram is unreachable (%s); retrying in the background", type(exc).__name__)
                self.problem = f"unreachable since {time.monotonic() - since:.0f} s ago ({type(exc).__name__})"
                wait = exc.retry_after if isinstance(exc, TelegramRetryAfter) else delay
                await pause(wait, stop)
                delay = min(delay * 2, self.max_delay)
                continue
            self.connected = True
            if since is not None:
                log.warning("Telegram reachable again after %.0f s", time.monotonic() - since)
            log.info("Telegram webhook set" if self.webhook_url else "Telegram polling")
            return

    async def _connect(self) -> None:
        if self.webhook_url:
            await self.bot.set_webhook(
                self.webhook_url,
                secret_token=self.secret or None,
                allowed_updates=self.dispatcher.resolve_used_update_types(),
            )
            return
        await self.bot.delete_webhook()
        # aiogram's polling rides out later outages itself, with its own back-off.
        self.polling = asyncio.create_task(
            self.dispatcher.start_polling(self.bot, handle_signals=False, close_bot_session=False)
        )

    async def close(self) -> None:
        if self.polling is not None:
            with contextlib.suppress(RuntimeError):  # polling had not started yet
                await self.dispatcher.stop_polling()
            await asyncio.gather(self.polling, return_exceptions=True)
