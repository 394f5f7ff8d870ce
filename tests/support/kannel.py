"""A real Kannel for tests: bearerbox + smsbox from ``deploy/kannel/kannel.conf``, and two fake SMSCs.

The phone side is Kannel's own ``fakesmsc``. One long-lived fakesmsc receives every MT on the "phone" SMSC
and prints it; MO are injected by short-lived fakesmsc processes on a second fake SMSC that no MT is ever routed
to (the fake SMSC serves one client at a time, so injecting through the phone's connection would mean cutting
it while answers may be on the way).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import socket
import string
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, unquote_to_bytes

from bot.channels.sms.kannel import with_credentials
from soro.ports import free_port
from tests.support.stack import eventually

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = REPO_ROOT / "deploy" / "kannel" / "kannel.conf"
FAKESMSC = Path("/usr/lib/kannel/test/fakesmsc")
SERVICE_NUMBER = "1234"
_GOT = re.compile(r"Got message \d+: <(.*)>\s*$")

# The phone SMSC gets every MT; the injector SMSC gets none (no receiver has the prefix "none").
SMSC_CONF = """
group = smsc
smsc = fake
smsc-id = phone
port = {phone_port}
our-host = 127.0.0.1
connect-allow-ip = "127.0.0.1"

group = smsc
smsc = fake
smsc-id = inject
port = {inject_port}
our-host = 127.0.0.1
connect-allow-ip = "127.0.0.1"
allowed-prefix = "none"
"""


async def _end(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.terminate()
        try:
            # A bearerbox holding a delivery report for an smsbox already gone never ends by itself ("smsbox_list
            # empty!" until killed); every other shutdown takes well under a second.
            await asyncio.wait_for(process.wait(), 2)
        except TimeoutError:
            process.kill()
            await process.wait()


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass(frozen=True)
class Part:
    kind: str  # "text", "ucs-2", "data" (8-bit) or "udh" (a part of a concatenated SMS)
    data: bytes
    udh: bytes = b""


@dataclass
class ReceivedSms:
    """An MT as the phone got it, its parts put together."""

    sender: str
    receiver: str
    parts: list[Part] = field(default_factory=list)

    @property
    def ucs2(self) -> bool:
        """UCS-2 on the air. A lone SMS says so; parts of a concatenated one do not, but GSM-7 parts are
        printable text as they are, while UCS-2 parts of Tajik are UTF-16 (zero and 0x04 bytes)."""
        if len(self.parts) == 1:
            return self.parts[0].kind == "ucs-2"
        try:
            return not b"".join(p.data for p in self.parts).decode("utf-8").isprintable()
        except UnicodeDecodeError:
            return True

    @property
    def text(self) -> str:
        data = b"".join(p.data for p in self.parts)
        return data.decode("utf-16-be") if self.ucs2 else data.decode("utf-8")


def _concatenation(udh: bytes) -> tuple[int, int, int] | None:
    """(reference, total, sequence) from a concatenation header (8- or 16-bit reference)."""
    i = 1
    while i + 1 < len(udh):
        iei, length = udh[i], udh[i + 1]
        body = udh[i + 2 : i + 2 + length]
        if iei == 0x00 and length == 3:
            return body[0], body[1], body[2]
        if iei == 0x08 and length == 4:
            return body[0] << 8 | body[1], body[2], body[3]
        i += 2 + length
    return None


def parse_phone_log(lines: list[str]) -> list[ReceivedSms]:
    """The MT fakesmsc printed, concatenated parts joined (only once all of them arrived)."""
    out: list[ReceivedSms] = []
    pending: dict[tuple[str, int], dict[int, Part]] = {}
    for line in lines:
        match = _GOT.search(line)
        if not match:
            continue
        sender, receiver, kind, rest = [*match.group(1).split(" ", 3), ""][:4]
        if kind == "udh":
            udh_raw, _, data_raw = rest.partition(" data ")
            part = Part("udh", unquote_to_bytes(data_raw.replace("+", " ")), unquote_to_bytes(udh_raw))
            concat = _concatenation(part.udh)
            if concat is None:
                out.append(ReceivedSms(sender, receiver, [part]))
                continue
            reference, total, sequence = concat
            got = pending.setdefault((receiver, reference), {})
            got[sequence] = part
            if len(got) == total:
                out.append(ReceivedSms(sender, receiver, [got[n] for n in sorted(got)]))
                del pending[(receiver, reference)]
        elif kind == "text":
            out.append(ReceivedSms(sender, receiver, [Part("text", rest.encode("utf-8"))]))
        else:
            out.append(ReceivedSms(sender, receiver, [Part(kind, unquote_to_bytes(rest.replace("+", " ")))]))
    return out


@dataclass
class KannelConfig:
    bot_url: str  # where smsbox's post-url points: the bot's HTTP server
    secret: str
    username: str = "soro"
    password: str = field(default_factory=lambda: secrets.token_hex(8))
    http_retries: int = 20
    http_retry_delay: int = 1
    http_timeout: int = 5


class Kannel:
    """bearerbox + smsbox + the phone's fakesmsc, on free loopback ports, in ``workdir``."""

    def __init__(self, workdir: Path, config: KannelConfig) -> None:
        self.workdir = workdir
        self.config = config
        self.admin_port = free_port()
        self.smsbox_port = free_port()
        self.sendsms_port = free_port()
        self.phone_port = free_port()
        self.inject_port = free_port()
        self.processes: dict[str, asyncio.subprocess.Process] = {}
        self.phone_log = workdir / "phone.log"
        self._phone_offset = 0
        self._phone_lines: list[str] = []

    @property
    def sendsms_url(self) -> str:
        return f"http://127.0.0.1:{self.sendsms_port}"

    def render(self) -> Path:
        """``deploy/kannel/kannel.conf`` filled in as the container's entrypoint would, for these ports."""
        (self.workdir / "store").mkdir(parents=True, exist_ok=True)
        smsc = self.workdir / "smsc.conf"
        smsc.write_text(SMSC_CONF.format(phone_port=self.phone_port, inject_port=self.inject_port))
        values = {
            "KANNEL_ADMIN_PORT": self.admin_port,
            "KANNEL_ADMIN_PASSWORD": "admin",
            "KANNEL_ADMIN_ALLOW_IP": "127.0.0.1",
            "KANNEL_SMSBOX_PORT": self.smsbox_port,
            "KANNEL_SENDSMS_PORT": self.sendsms_port,
            "KANNEL_BEARERBOX_HOST": "127.0.0.1",
            "KANNEL_BOX_ALLOW_IP": "127.0.0.1",
            "KANNEL_SENDSMS_ALLOW_IP": "127.0.0.1",
            "KANNEL_LOG_DIR": self.workdir,
            "KANNEL_LOG_LEVEL": 0,
            "KANNEL_STORE_DIR": self.workdir / "store",
            "KANNEL_HTTP_RETRIES": self.config.http_retries,
            "KANNEL_HTTP_RETRY_DELAY": self.config.http_retry_delay,
            "KANNEL_HTTP_TIMEOUT": self.config.http_timeout,
            "KANNEL_BOT_AUTH_URL": with_credentials(self.config.bot_url, self.config.secret),
            "KANNEL_SMSC_CONF": smsc,
            "SORO_SMS_KANNEL_USERNAME": self.config.username,
            "SORO_SMS_KANNEL_PASSWORD": self.config.password,
            "SORO_SMS_MO_SECRET": self.config.secret,
        }
        conf = self.workdir / "kannel.conf"
        conf.write_text(string.Template(TEMPLATE.read_text()).substitute({k: str(v) for k, v in values.items()}))
        return conf

    async def _spawn(self, name: str, *argv: str | Path, output: Path | None = None) -> asyncio.subprocess.Process:
        with (output or self.workdir / f"{name}.out").open("ab") as log:
            return await asyncio.create_subprocess_exec(
                *(str(a) for a in argv), stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir
            )

    async def start(self) -> None:
        conf = self.render()
        self.processes["bearerbox"] = await self._spawn("bearerbox", "bearerbox", conf)
        await eventually(
            lambda: _listening(self.smsbox_port) and _listening(self.phone_port), 20, what="Kannel bearerbox to listen"
        )
        self.processes["smsbox"] = await self._spawn("smsbox", "smsbox", conf)
        await eventually(lambda: _listening(self.sendsms_port), 20, what="Kannel smsbox to listen")
        # The phone: connected for good, sending nothing itself (-m 0), printing every MT it gets.
        phone = ("-H", "127.0.0.1", "-r", str(self.phone_port), "-m", "0", "0 0 text -")
        self.processes["phone"] = await self._spawn("phone", FAKESMSC, *phone, output=self.phone_log)

    async def stop(self) -> None:
        """Everything down, as a crash of the gateway host would leave it (the store file stays)."""
        for name in ("phone", "smsbox", "bearerbox"):
            process = self.processes.pop(name, None)
            if process is not None:
                await _end(process)

    async def inject(self, sender: str, text: str | bytes, kind: str = "ucs2", receiver: str = SERVICE_NUMBER) -> None:
        """An MO from ``sender``: ``ucs2`` (text as UTF-16), ``text`` (its UTF-8 bytes) or ``data`` (raw bytes)."""
        if kind == "ucs2":
            body = quote(text.encode("utf-16-be") if isinstance(text, str) else text, safe="")
        elif kind == "data":
            body = quote(text.encode() if isinstance(text, str) else text, safe="")
        else:
            assert isinstance(text, str) and "\n" not in text
            body = text
        out = self.workdir / f"inject-{time.monotonic_ns()}.out"
        line = f"{sender} {receiver} {kind} {body}"
        process = await self._spawn(
            "inject",
            FAKESMSC,
            "-H",
            "127.0.0.1",
            "-r",
            str(self.inject_port),
            "-m",
            "1",
            "-i",
            "0.01",
            line,
            output=out,
        )
        try:
            await eventually(
                lambda: "sent message 1" in out.read_text(errors="replace"), 20, what="fakesmsc to send the MO"
            )
        finally:
            await _end(process)

    def received(self, receiver: str | None = None) -> list[ReceivedSms]:
        """Every MT the phone got so far (to ``receiver`` only, when given)."""
        with contextlib.suppress(FileNotFoundError), self.phone_log.open("rb") as log:
            log.seek(self._phone_offset)
            chunk = log.read()
            complete = chunk[: chunk.rfind(b"\n") + 1]
            self._phone_offset += len(complete)
            self._phone_lines += complete.decode("utf-8", errors="replace").splitlines()
        messages = parse_phone_log(self._phone_lines)
        return [m for m in messages if receiver is None or m.receiver == receiver]

    def log(self, name: str) -> str:
        return (self.workdir / f"{name}.log").read_text(errors="replace")
