"""Kannel: MT through smsbox's ``sendsms`` (POST), MO through its ``post-url``, delivery reports through ``dlr-url``.

MO arrive as POST: the message bytes in the body, the sender in ``X-Kannel-From`` (``send-sender``), the id,
coding and charset in a short query. A long question thus never meets the HTTP server's request-line limit,
and the number and the text stay out of every request line a server might log. Older configurations with a
``get-url`` (everything in the query) are still read.

Both webhooks are authenticated twice: a shared secret, compared in constant time, and an allow-list of gateway
addresses. The secret travels as HTTP Basic credentials: Kannel sends the user-info of its URLs
(``http://kannel:SECRET@bot:8080/...``) as an ``Authorization`` header, not in the request line. A ``secret``
query parameter (older configurations) is still accepted. The webhooks answer 200 only once the message or
report is stored; while Redis or the database is away they answer 503 and smsbox asks again
(``http-request-retry``), so a failure here loses nothing. What can never be read answers 4xx, or 200 and is
dropped, so no retry is wasted on it.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import logging
from collections.abc import Awaitable, Callable, Sequence
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import aiohttp
from aiohttp import web

from bot.channels.sms.decoding import decode_text
from bot.channels.sms.gateway import (
    DeliveryReport,
    InboxUnavailable,
    MobileOriginated,
    OutgoingSms,
    RejectedByGateway,
    SmsInbox,
    TemporaryGatewayError,
)
from bot.store.models import DeliveryState
from soro.outage import describe
from tajik.sms import SmsEncoding

log = logging.getLogger(__name__)

MO_PATH = "/sms/kannel"
DLR_PATH = "/sms/kannel/dlr"
# Kannel's placeholders for the post-url of the sms-service: message id, coding, charset (text and sender
# travel in the body and in X-Kannel-From).
MO_URL_QUERY = "id=%I&coding=%c&charset=%C"
# The user name in the credentials Kannel sends; only the password (the secret) is checked.
KANNEL_USER = "kannel"
# Ids are stored prefixed ("kannel:" + a UUID) in a 64-character key.
MAX_ID_CHARS = 57
MAX_SMS_ID = 2**31 - 1  # outbound_sms.id is a 32-bit integer column
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
        base = with_credentials(self.dlr_base_url, self.secret)
        return f"{base}{DLR_PATH}?id={sms_id}&type=%d&smsc_id=%F"

    async def submit(self, sms: OutgoingSms) -> None:
        # POST with X-Kannel-* headers, not a GET query: the password, the number, the text and the dlr-url
        # (with the secret) stay out of the request line that smsbox and any proxy between might log.
        headers = {
            "Content-Type": "text/plain; charset=UTF-8",
            "X-Kannel-Username": self.username,
            "X-Kannel-Password": self.password,
            "X-Kannel-From": self.sender,
            "X-Kannel-To": sms.to,
            "X-Kannel-Coding": str(UCS2_CODING if sms.encoding is SmsEncoding.UCS2 else 0),
            "X-Kannel-DLR-Mask": str(DLR_MASK),
            "X-Kannel-DLR-URL": self.dlr_url(sms.sms_id),
        }
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=self.timeout)
        try:
            async with self._http.post(self.sendsms_url, data=sms.text.encode(), headers=headers) as response:
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
        mo = self._guarded(lambda request: self._mo(request, inbox))
        dlr = self._guarded(lambda request: self._dlr(request, inbox))
        return [web.post(MO_PATH, mo), web.get(MO_PATH, mo), web.get(DLR_PATH, dlr), web.post(DLR_PATH, dlr)]

    def _guarded(
        self, handler: Callable[[web.Request], Awaitable[web.Response]]
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def guarded(request: web.Request) -> web.Response:
            if not self._authentic(request):
                log.warning("SMS webhook %s refused: wrong secret or address %s", request.path, request.remote)
                return web.Response(status=403, text="forbidden")
            try:
                return await handler(request)
            except InboxUnavailable:  # logged once per outage by the inbox; smsbox asks again later
                return web.Response(status=503, text="try again later")
            except Exception as exc:  # a bug: the type only, since a message may quote the text or the number
                log.error("SMS webhook %s failed: %s", request.path, describe(exc))
                return web.Response(status=500, text="error")

        return guarded

    def _authentic(self, request: web.Request) -> bool:
        if not hmac.compare_digest(_credential(request), self.secret.encode()):
            return False
        try:
            address = ipaddress.ip_address(request.remote or "")
        except ValueError:
            return False
        return any(address in network for network in self.allowed)

    async def _mo(self, request: web.Request, inbox: SmsInbox) -> web.Response:
        query = _raw_query(request)
        if request.method == "POST":
            data = await request.read()
            header = request.headers.get("X-Kannel-From", "")  # with send-sender; else a %p in the URL
            sender = header.encode("utf-8", errors="replace") or query.get("from", b"")
            coding = query.get("coding") or request.headers.get("X-Kannel-Coding", "").encode("ascii", "replace")
            charset = query.get("charset", b"").decode("ascii", errors="replace") or (request.charset or "")
        else:
            data, sender = query.get("text", b""), query.get("from", b"")
            coding = query.get("coding", b"")
            charset = query.get("charset", b"").decode("ascii", errors="replace")
        gateway_id = _token(query.get("id", b""), MAX_ID_CHARS)
        sender_text = _token(sender, 64)
        if gateway_id is None or sender_text is None:
            return web.Response(status=400, text="an id (at most 57 characters) and from are required")
        text = decode_text(data, charset, ucs2=coding.strip() == str(UCS2_CODING).encode())
        # Kannel ids are UUIDs; the prefix keeps them apart from an aggregator's ids added later.
        await inbox.receive(MobileOriginated(f"{self.name}:{gateway_id}", sender_text, text))
        return web.Response(text="")

    async def _dlr(self, request: web.Request, inbox: SmsInbox) -> web.Response:
        query = _raw_query(request)
        try:
            sms_id = int(query.get("id", b""))
            state, outcome = DLR_TYPES[int(query.get("type", b""))]
        except (ValueError, KeyError):
            return web.Response(status=400, text="id and a known type are required")
        if not 0 < sms_id <= MAX_SMS_ID:  # no SMS of ours has it: a report that can never apply
            return web.Response(status=400, text="unknown id")
        smsc_id = query.get("smsc_id", b"").decode("ascii", errors="replace").strip()[:64] or None
        await inbox.report(DeliveryReport(sms_id, state, outcome, smsc_id))
        return web.Response(text="")


def with_credentials(url: str, secret: str) -> str:
    """``url`` with the secret as its user-info: Kannel sends that as an Authorization header."""
    parts = urlsplit(url.rstrip("/"))
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{KANNEL_USER}:{secret}@{host}"))


def _credential(request: web.Request) -> bytes:
    """The password of the request's Basic credentials, else the ``secret`` query parameter of a get-url."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            return base64.b64decode(value.strip(), validate=True).partition(b":")[2]
        except (binascii.Error, ValueError):
            return b""
    return _raw_query(request).get("secret", b"")


def _token(value: bytes, limit: int) -> str | None:
    """An id or an address as the gateway gave it: printable ASCII within ``limit``, else None."""
    text = value.decode("ascii", errors="replace").strip()
    if not text or len(text) > limit or not text.isprintable() or "\ufffd" in text:
        return None
    return text


def _raw_query(request: web.Request) -> dict[str, bytes]:
    """The query's values as bytes: Kannel percent-encodes the message's bytes in whatever encoding it has."""
    pairs = parse_qsl(request.rel_url.raw_query_string, keep_blank_values=True, encoding="latin-1")
    return {key: value.encode("latin-1") for key, value in pairs}
