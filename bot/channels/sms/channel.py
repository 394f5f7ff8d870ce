"""The SMS channel assembled: gateway, outbox, dispatcher, inbox and the delivery loop's sender."""

from __future__ import annotations

import asyncio
import re

from aiohttp import web

from bot.channels.sms.dispatch import SmsDispatcher
from bot.channels.sms.gateway import SmsGateway
from bot.channels.sms.inbox import Inbox
from bot.channels.sms.kannel import KannelGateway
from bot.channels.sms.outbox import SmsOutbox
from bot.channels.sms.redaction import install_redaction
from bot.channels.sms.sender import SmsSender
from bot.pipeline import TurnOptions
from bot.services import Services
from soro.outage import outages
from soro.settings import Settings
from tajik.sms import SMS_INSTRUCTION, char_budget

# The secret is the password of the credentials in Kannel's post-url and dlr-url: only characters that need no
# escaping there.
_SECRET = re.compile(r"[A-Za-z0-9_-]{16,}")


def sms_turn_options(settings: Settings) -> TurnOptions:
    """Turns for SMS: the model is told the character budget and stopped not far past it."""
    budget = char_budget(settings.sms_segment_budget)
    return TurnOptions(
        max_tokens=max(16, round(budget / settings.chars_per_token)),
        char_budget=budget,
        instruction=SMS_INSTRUCTION.format(chars=budget),
        stream_partials=False,  # an SMS cannot be edited: only the final answer is worth sending
    )


def kannel_gateway(settings: Settings) -> KannelGateway:
    secret = settings.sms_mo_secret.get_secret_value()
    if not _SECRET.fullmatch(secret):
        raise ValueError("SORO_SMS_MO_SECRET must be at least 16 characters of A-Z a-z 0-9 _ - (openssl rand -hex 32)")
    return KannelGateway(
        sendsms_url=settings.sms_kannel_url,
        username=settings.sms_kannel_username,
        password=settings.sms_kannel_password.get_secret_value(),
        sender=settings.sms_sender,
        secret=secret,
        dlr_base_url=settings.sms_dlr_base_url,
        allowed=settings.sms_allowed_gateways,
    )


class SmsChannel:
    def __init__(self, settings: Settings, services: Services, gateway: SmsGateway | None = None) -> None:
        install_redaction(settings.sms_mo_secret.get_secret_value(), settings.sms_kannel_password.get_secret_value())
        self.gateway = gateway or kannel_gateway(settings)
        process_outages = outages(services.metrics.dependencies, "bot")
        self.outbox = SmsOutbox(services.sessions)
        self.dispatcher = SmsDispatcher(
            self.outbox,
            self.gateway,
            services.pipeline,
            services.limits,
            services.metrics,
            cost_per_segment=settings.sms_cost_per_segment,
            retry_max_seconds=settings.sms_gateway_retry_max_seconds,
            process_outages=process_outages,
        )
        wake = self.dispatcher.wake.set
        self.sender = SmsSender(self.outbox, services.metrics, settings.sms_segment_budget, wake)
        self.inbox = Inbox(
            services.pipeline,
            self.outbox,
            services.limits,
            services.metrics,
            segment_budget=settings.sms_segment_budget,
            daily_segments=settings.sms_daily_segments,
            default_country_code=settings.sms_default_country_code,
            wake=wake,
            process_outages=process_outages,
        )

    def routes(self) -> list[web.RouteDef]:
        return self.gateway.routes(self.inbox)

    async def run(self, stop: asyncio.Event) -> None:
        try:
            await self.dispatcher.run(stop)
        finally:
            await self.gateway.close()
