"""``soro bot``: Telegram (webhook or polling) and the SMS endpoints, the delivery loop, health and metrics."""

from __future__ import annotations

import asyncio
import logging
import signal

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.telegram import TelegramAPIServer
from aiohttp import web

from bot.channels.base import ChannelSender
from bot.channels.sms import CHANNEL as SMS
from bot.channels.sms import SmsChannel, sms_turn_options
from bot.channels.telegram.link import TelegramLink
from bot.channels.telegram.previews import LinkEstimate
from bot.channels.telegram.router import UpdateKeyMiddleware, build_router
from bot.channels.telegram.sender import ApiMiddleware, TelegramSender
from bot.channels.telegram.session import JsonSession
from bot.delivery import DeliveryLoop
from bot.http import WEBHOOK_PATH, build_http_app, telegram_webhook
from bot.pacing import OutboundLimiter
from bot.routing import served_models
from bot.services import Services
from soro.loop import settle_heap
from soro.settings import Settings

log = logging.getLogger(__name__)


def telegram_bot(settings: Settings, services: Services) -> tuple[Bot, TelegramSender]:
    session = JsonSession(api=TelegramAPIServer.from_base(settings.telegram_api_base))
    # No parse mode: model Markdown can never make a send fail.
    bot = Bot(
        settings.telegram_token.get_secret_value(), session=session, default=DefaultBotProperties(parse_mode=None)
    )
    limiter = OutboundLimiter(settings.telegram_global_rate, settings.telegram_chat_rate)
    link = LinkEstimate()
    bot.session.middleware(ApiMiddleware(limiter, services.metrics, link))
    return bot, TelegramSender(bot, limiter, services.metrics, link)


def telegram_dispatcher(services: Services) -> Dispatcher:
    # No FSM: no handler keeps per-chat state, and its middleware would cost every update a storage lookup.
    dispatcher = Dispatcher(
        disable_fsm=True, pipeline=services.pipeline, queue=services.queue, settings=services.settings
    )
    dispatcher.update.outer_middleware(UpdateKeyMiddleware())
    dispatcher.include_router(build_router())
    return dispatcher


async def run_bot(settings: Settings, process_index: int = 0, processes: int = 1) -> None:
    """One bot process; of ``processes`` sharing the port (``bot.processes``), only the first delivers."""
    delivering = process_index == 0
    sms_on = bool(settings.sms_kannel_url)
    services = Services.create(settings, {SMS: sms_turn_options(settings)} if sms_on else None)
    senders: dict[str, ChannelSender] = {}
    routes: list[web.RouteDef] = []
    sms: SmsChannel | None = None
    if sms_on:
        sms = SmsChannel(settings, services)
        senders[SMS] = sms.sender
        routes.extend(sms.routes())
    else:
        log.info("SORO_SMS_KANNEL_URL is empty: SMS is off")
    bot: Bot | None = None
    dispatcher: Dispatcher | None = None
    if settings.telegram_token.get_secret_value():
        bot, sender = telegram_bot(settings, services)
        senders[sender.channel] = sender
        dispatcher = telegram_dispatcher(services)
        if settings.webhook_url:
            routes.append(
                telegram_webhook(dispatcher, bot, settings.webhook_secret.get_secret_value(), services.pipeline)
            )
    else:
        log.warning("SORO_TELEGRAM_TOKEN is empty: Telegram is off")

    services.metrics.prime(channels=senders, models=served_models(settings))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    link: TelegramLink | None = None
    probes = {}
    if bot is not None and dispatcher is not None and delivering:  # one process talks to Telegram for all
        webhook = settings.webhook_url.rstrip("/") + WEBHOOK_PATH if settings.webhook_url else ""
        link = TelegramLink(bot, dispatcher, webhook, settings.webhook_secret.get_secret_value())
        probes["telegram"] = link.status
    app = build_http_app(
        services.metrics.registry,
        {"database": services.check_database, "redis": services.check_redis},
        routes,
        probes,
    )
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.http_host, settings.http_port, reuse_port=processes > 1).start()
    log.info("HTTP on %s:%d", settings.http_host, settings.http_port)

    settle_heap()
    delivery = DeliveryLoop(settings, services.pipeline, services.queue, senders, services.metrics)
    tasks = [asyncio.create_task(delivery.run(stop))] if delivering else []
    if sms is not None:
        tasks.append(asyncio.create_task(sms.run(stop)))
    if link is not None:
        # In the background: SMS, health and the webhook endpoint serve while Telegram is away.
        tasks.append(asyncio.create_task(link.run(stop)))
    try:
        await stop.wait()
    finally:
        stop.set()
        if link is not None:
            await link.close()
        await asyncio.gather(*tasks, return_exceptions=True)
        await runner.cleanup()
        if bot is not None:
            await bot.session.close()
        await services.close()
