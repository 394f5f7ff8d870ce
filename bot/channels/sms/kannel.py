"""Kannel: MT through smsbox's ``sendsms``, MO through its ``get-url``, delivery reports through ``dlr-url``.

Both webhooks are authenticated twice: a shared secret in the URL (compared in constant time) and an
allow-list of gateway addresses. They answer 200 only once the message or report is stored; anything else
makes smsbox retry (``http-request-retry`` in its config), so a failure here loses nothing.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Awaitable, Callable, Sequence
from urllib.parse import parse_qsl

import aiohttp
from aiohttp import web

from bot.channels.sms.decoding import decode_text
from bot.channels.sms.gateway import (
    DeliveryReport,
    MobileOriginated,
    OutgoingSms,
    RejectedByGateway,
    SmsInbox,
    TemporaryGatewayError,
)
from bot.store.models import DeliveryState
from tajik.sms import SmsEncoding

log = logging.getLogger(__name__)

MO_PATH = "/sms/kannel"
DLR_PATH = "/sms/kannel/dlr"
# Kannel's placeholders for the get-url of the sms-service: message id, sender, raw bytes, coding, charset.
MO_URL_QUERY = "id=%I&from=%p&text=%b&coding=%c&charset=%C"
# Report on: delivered (1), undelivered (2), taken by the SMSC (8), rejected by the SMSC (16).
DLR_MASK = 1 | 2 | 8 | 16
# Kannel's %d in a delivery report → our state and the metric's label.
DLR_TYPES = {
    1: (DeliveryState.DELIVERED, "delivered"),
    2: (DeliveryState.FAILED, "undelivered"),
    4: (DeliveryState.ACCEPTED, "buffered"),
    8: (DeliveryState.ACCEPTED, "smsc_accepted"),
    16: (DeliveryState.FAILED, "smsc_rejected"),
}
UCS2_CODING = 2
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class KannelGateway:
    name = "kannel"

    def __init__(
        self,
        sendsms_url: str,
        username: str,
        password: str,
        sender: str,
        secret: str,
        dlr_base_url: str,
        allowed: Sequence[str],
        timeout_seconds: float = 10.0,
    ) -> None:
        self.sendsms_url = sendsms_url.rstrip("/") + "/cgi-bin/sendsms"
        self.username = username
        self.password = password
        self.sender = sender
        self.secret = secret
        self.dlr_base_url = dlr_base_url.rstrip("/")
        self.allowed: list[Network] = [ipaddress.ip_network(a, strict=False) for a in allowed]
        self.timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._http: aiohttp.ClientSession | None = None

    # MT

    def dlr_url(self, sms_id: int) -> str:
        return f"{self.dlr_base_url}{DLR_PATH}?secret={self.secret}&id={sms_id}&type=%d&smsc_id=%F"

    async def submit(self, sms: OutgoingSms) -> None:
        params = {
            "username": self.username,
            "password": self.password,
            "from": self.sender,
            "to": sms.to,
            "text": sms.text,
            "charset": "UTF-8",
            "coding": str(UCS2_CODING if sms.encoding is SmsEncoding.UCS2 else 0),
            "dlr-mask": str(DLR_MASK),
            "dlr-url": self.dlr_url(sms.sms_id),
        }
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=self.timeout)
        try:
            async with self._http.get(self.sendsms_url, params=params) as response:
                body = (await response.text(errors="replace")).strip()
                status = response.status
        except (aiohttp.ClientConnectionError, TimeoutError) as exc:
            raise TemporaryGatewayError(f"Kannel unreachable: {type(exc).__name__}", "connection") from exc
        if status in (200, 202):  # "0: Accepted for delivery" or "3: Queued for later delivery"
            return
        if status >= 500 or status == 429:
            raise TemporaryGatewayError(f"Kannel answered {status}: {body[:100]}", f"http_{status}")
        if status in (401, 403) and "authorization" in body.lower():
            # Wrong sendsms-user: nothing to drop the message for; it goes out once an operator fixes it.
            log.error("Kannel refused our sendsms user: check SORO_SMS_KANNEL_USERNAME and _PASSWORD")
            raise TemporaryGatewayError(f"Kannel refused the sendsms user: {body[:100]}", "auth")
        raise RejectedByGateway(f"Kannel answered {status}: {body[:100]}", f"http_{status}")

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    # MO and delivery reports

    def routes(self, inbox: SmsInbox) -> list[web.RouteDef]:
        return [
            web.get(MO_PATH, self._guarded(lambda request: self._mo(request, inbox))),
            web.get(DLR_PATH, self._guarded(lambda request: self._dlr(request, inbox))),
        ]

    def _guarded(
        self, handler: Callable[[web.Request], Awaitable[web.Response]]
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def guarded(request: web.Request) -> web.Response:
            if not self._authentic(request):
                log.warning("SMS webhook %s refused: wrong secret or address %s", request.path, request.remote)
                return web.Response(status=403, text="forbidden")
            return await handler(request)

        return guarded

    def _authentic(self, request: web.Request) -> bool:
        given = _raw_query(request).get("secret", b"")
        if not hmac.compare_digest(given, self.secret.encode()):
            return False
        try:
            address = ipaddress.ip_address(request.remote or "")
        except ValueError:
            return False
        return any(address in network for network in self.allowed)

    async def _mo(self, request: web.Request, inbox: SmsInbox) -> web.Response:
        query = _raw_query(request)
        gateway_id = query.get("id", b"").decode("ascii", errors="replace").strip()
        sender = query.get("from", b"").decode("ascii", errors="replace").strip()
        if not gateway_id or not sender:
            return web.Response(status=400, text="id and from are required")
        coding = query.get("coding", b"").strip()
        charset = query.get("charset", b"").decode("ascii", errors="replace")
        text = decode_text(query.get("text", b""), charset, ucs2=coding == str(UCS2_CODING).encode())
        # Kannel ids are UUIDs; the prefix keeps them apart from an aggregator's ids added later.
        await inbox.receive(MobileOriginated(f"{self.name}:{gateway_id}", sender, text))
        return web.Response(text="")

    async def _dlr(self, request: web.Request, inbox: SmsInbox) -> web.Response:
        query = _raw_query(request)
        try:
            sms_id = int(query.get("id", b""))
            state, outcome = DLR_TYPES[int(query.get("type", b""))]
        except (ValueError, KeyError):
            return web.Response(status=400, text="id and a known type are required")
        smsc_id = query.get("smsc_id", b"").decode("ascii", errors="replace").strip()[:64] or None
        await inbox.report(DeliveryReport(sms_id, state, outcome, smsc_id))
        return web.Response(text="")


def _raw_query(request: web.Request) -> dict[str, bytes]:
    """The query's values as bytes: Kannel percent-encodes the message's bytes in whatever encoding it has."""
    pairs = parse_qsl(request.rel_url.raw_query_string, keep_blank_values=True, encoding="latin-1")
    return {key: value.encode("latin-1") for key, value in pairs}
