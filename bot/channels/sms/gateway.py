"""What the SMS channel needs from a gateway: Kannel today, an HTTP aggregator with signed webhooks tomorrow.

A gateway turns its own webhooks into ``MobileOriginated`` messages and ``DeliveryReport``s for an ``SmsInbox``,
and hands ``OutgoingSms`` to the operator. Keywords, quotas, the outbox and the pipeline never see which
gateway it is.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

from aiohttp import web

from bot.store.models import DeliveryState
from tajik.sms import SmsEncoding


@dataclass(frozen=True)
class MobileOriginated:
    """An SMS from a user, as the gateway delivered it."""

    gateway_id: str  # the gateway's id of this message: a retried webhook carries the same one
    sender: str  # as the gateway gave it; the inbox makes it E.164
    text: str | None  # None: the gateway's bytes could not be read as text in any encoding
    received_at: float = field(default_factory=time.time)


@dataclass(frozen=True)
class DeliveryReport:
    sms_id: int  # ``OutboundSms.id``, which the gateway was given with the message
    state: DeliveryState
    outcome: str  # for the ``soro_sms_dlr_total`` metric: delivered, undelivered, smsc_accepted, …
    smsc_id: str | None = None  # the operator's id of the message


@dataclass(frozen=True)
class OutgoingSms:
    sms_id: int
    to: str  # E.164
    text: str
    encoding: SmsEncoding


class GatewayError(Exception):
    """The gateway did not take a message; ``kind`` labels ``soro_sms_gateway_errors_total``."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


class TemporaryGatewayError(GatewayError):
    """Down, overloaded, or misconfigured in a way an operator fixes: try again later."""


class RejectedByGateway(GatewayError):
    """This message will never be taken (an impossible number, a route that does not exist)."""


class InboxUnavailable(Exception):
    """The inbox could not store a message because Redis or the database is away: the gateway asks again."""

    def __init__(self, dependency: str) -> None:
        super().__init__(f"{dependency} unavailable")
        self.dependency = dependency


class SmsInbox(Protocol):
    async def receive(self, message: MobileOriginated) -> None:
        """Store and act on an MO; raises when it could not (``InboxUnavailable`` in an outage), so the gateway
        retries."""
        ...

    async def report(self, report: DeliveryReport) -> None:
        """Record a delivery report; raises when it could not, so the gateway retries."""
        ...


class SmsGateway(Protocol):
    name: str

    async def submit(self, sms: OutgoingSms) -> None:
        """Hand one SMS to the gateway; raises ``TemporaryGatewayError`` or ``RejectedByGateway``."""
        ...

    def routes(self, inbox: SmsInbox) -> list[web.RouteDef]:
        """The gateway's webhooks (MO and delivery reports), authenticated, feeding ``inbox``."""
        ...

    async def close(self) -> None: ...
