"""The chaos stack and its bookkeeping: real processes, real faults, and what the users saw.

``soro bot`` (webhook with a secret) and three ``soro worker`` run as processes on a private Redis (AOF), the
test's own PostgreSQL database and the session's vLLM, reached through a proxy that can be cut. The Bot API
stand-in plays Telegram both ways: it receives the bot's calls and pushes the users' updates to the webhook,
retrying them as Telegram does. Users write one message at a time per chat and wait for its answer, so every
accepted message owes exactly one final message in its chat: more is a duplicate, fewer is a loss.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import random
import re
import secrets
import socket
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.store.models import Message, Request, RequestState, Role
from bot.texts import TEXTS
from soro.ports import free_port
from tests.support.processes import SoroProcess, soro_env
from tests.support.proxy import TcpProxy
from tests.support.redis_server import PrivateRedis
from tests.support.stack import eventually
from tests.support.telegram_api import BotApiStandIn, WebhookDelivery, text_update
from tests.support.vllm import ServedModel

WORKERS = 3
ANSWER_TIMEOUT = 240.0  # one message's longest wait: the 120 s deadline, a 60 s delivery lease, restarts
MARKER = re.compile(r"chx[0-9a-f]{10}")
QUESTIONS = (
    "Салом! Дар бораи Душанбе чӣ медонед?",
    "Лутфан бигӯед, чаро осмон кабуд аст?",
    "Барои имтиҳони риёзӣ чӣ тавр тайёрӣ бинам?",
    "Кӯли Искандаркӯл дар куҷост?",
)
# Every text the bot says of its own accord (in any UI language): what is not one of them came from the model.
_NOTICE_PREFIXES = [
    (key, v.split("{")[0]) for key, variants in TEXTS.items() for v in variants.values() if v[:1] != "{"
]


def notice_of(reply: str) -> str | None:
    """Which of the bot's own texts ``reply`` is (``expired``, ``busy`` …), None for a model answer."""
    return next((key.value for key, prefix in _NOTICE_PREFIXES if reply.startswith(prefix)), None)


def is_notice(reply: str) -> bool:
    return notice_of(reply) is not None


@dataclass
class Turn:
    """One user message and the final message it got."""

    chat: int
    text: str
    sent_at: float
    delivery: WebhookDelivery
    final_at: float | None = None
    final_text: str | None = None

    @property
    def accepted(self) -> bool:
        return self.delivery.accepted_at is not None


# How far from a kill of the bot, or a cut of its link to Telegram, an answer may have reached the Bot API and
# still have been unheard of by the bot: the response was on its way, or unread in the dying process's socket,
# or its connection was cut before the response crossed it.
IN_FLIGHT_SECONDS = 2.0


@dataclass
class Fault:
    """An outage or a kill: from ``start`` to ``end`` (equal for an instant fault such as kill -9)."""

    what: str
    start: float
    end: float | None = None


@dataclass
class Row:
    scenario: str
    accepted: int
    answered: int
    told: int
    lost: int
    duplicates: int
    p50: float
    p95: float
    latency_max: float
    recovery: float | None
    faults: int
    unexpected_exits: int
    seconds: float
    notices: dict[str, int] = field(default_factory=dict)
    # Of the duplicates: answers the Bot API took in the moment before the bot was killed (-9) or its link to
    # Telegram was cut, which the bot never heard back about; the Bot API has no idempotency key, so the bot
    # (restarted, or once the link is back) sends them again rather than lose them.
    in_flight_at_a_cut: int = 0

    HEADER = (
        "| scenario | accepted | answered | told | lost | duplicate finals | p50 s | p95 s | max s "
        "| recovery s | faults | unplanned exits | run s |"
    )

    def _duplicates(self) -> str:
        if not self.in_flight_at_a_cut:
            return str(self.duplicates)
        return f"{self.duplicates} ({self.in_flight_at_a_cut} in flight at a bot kill or link cut)"

    def _told(self) -> str:
        if not self.notices:
            return str(self.told)
        return f"{self.told} ({', '.join(f'{kind} {n}' for kind, n in sorted(self.notices.items()))})"

    def markdown(self) -> str:
        recovery = "—" if self.recovery is None else f"{self.recovery:.1f}"
        return (
            f"| {self.scenario} | {self.accepted} | {self.answered} | {self._told()} | {self.lost} | {self._duplicates()} "
            f"| {self.p50:.1f} | {self.p95:.1f} | {self.latency_max:.1f} | {recovery} | {self.faults} "
            f"| {self.unexpected_exits} | {self.seconds:.0f} |"
        )


def table(rows: Sequence[Row]) -> str:
    separator = "|" + "---|" * Row.HEADER.count(" | ") + "---|"
    return "\n".join([Row.HEADER, separator, *(row.markdown() for row in rows)])


def percentile(values: Sequence[float], share: float) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(share * 100) - 1]


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class ChaosStack:
    workdir: Path
    database_url: str
    redis: PrivateRedis
    vllm: ServedModel
    api: BotApiStandIn
    vllm_link: TcpProxy
    bot: SoroProcess
    workers: list[SoroProcess]
    secrets: dict[str, str]
    extra_env: dict[str, str] = field(default_factory=dict)
    turns: list[Turn] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    unsettled: bool = False
    _update_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _chat_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(5_000_001))

    @property
    def processes(self) -> list[SoroProcess]:
        return [self.bot, *self.workers]

    @property
    def http_port(self) -> int:
        return int(self.bot.env["SORO_HTTP_PORT"])

    # Processes

    async def start_bot(self, wait: bool = True) -> None:
        await self.bot.start()
        if wait:
            await self.bot_ready()

    async def bot_ready(self, timeout: float = 90) -> None:
        """The bot answers /healthz and has registered its webhook."""

        async def ready() -> bool:
            if not self.bot.running:
                raise AssertionError(f"soro bot exited:\n{self.bot.output()[-3000:]}")
            try:
                async with (
                    aiohttp.ClientSession() as http,
                    http.get(f"http://127.0.0.1:{self.http_port}/healthz", timeout=aiohttp.ClientTimeout(2)) as r,
                ):
                    return r.status == 200 and bool(self.api.webhook_url)
            except (aiohttp.ClientError, OSError, TimeoutError):
                return False

        await eventually(ready, timeout, 0.2, what="soro bot to serve its webhook")

    async def start_worker(self, worker: SoroProcess, wait: bool = True) -> None:
        await worker.start()
        if wait:
            port = int(worker.env["SORO_WORKER_METRICS_PORT"])

            def ready() -> bool:
                if not worker.running:
                    raise AssertionError(f"{worker.name} exited:\n{worker.output()[-3000:]}")
                return _listening(port)

            await eventually(ready, 90, 0.2, what=f"{worker.name} to serve")

    async def stop_all(self) -> None:
        for process in self.processes:
            await process.stop()

    # Users

    def new_chats(self, count: int) -> list[int]:
        return [next(self._chat_ids) for _ in range(count)]

    async def converse(
        self, chat: int, messages: int, pause: tuple[float, float] = (0.0, 0.5), until: float = float("inf")
    ) -> None:
        """One user: ``messages`` questions, each sent once the previous one got its final message, none after
        ``until`` (monotonic time)."""
        for index in range(messages):
            if time.monotonic() >= until:
                return
            marker = f"chx{secrets.token_hex(5)}"
            body = f"{marker} {random.choice(QUESTIONS)}"
            update = text_update(next(self._update_ids), chat, body)
            turn = Turn(chat, body, time.monotonic(), self.api.deliver(update))
            self.turns.append(turn)
            answered = await self._final(chat, index + 1, turn)
            if not answered:
                return  # this chat is out of step now: later answers could not be told apart
            turn.final_at, turn.final_text = answered
            await asyncio.sleep(random.uniform(*pause))

    async def _final(self, chat: int, count: int, turn: Turn) -> tuple[float, str] | None:
        deadline = turn.sent_at + ANSWER_TIMEOUT
        while time.monotonic() < deadline:
            finals = self.api.sent("sendMessage", chat)
            if len(finals) >= count:
                call = finals[count - 1]
                return call.at, str(call.params.get("text", ""))
            if turn.delivery.refused is not None or (turn.delivery.done.is_set() and not turn.accepted):
                return None
            await asyncio.sleep(0.1)
        return None

    async def load(
        self, chats: int, messages: int, pause: tuple[float, float] = (0.0, 0.5), budget: float = 150.0
    ) -> None:
        """``chats`` users at once; no new message after ``budget`` seconds, so a scenario whose service broke
        ends in bounded time (its unanswered messages still get their full wait)."""
        until = time.monotonic() + budget
        await asyncio.gather(*(self.converse(chat, messages, pause, until) for chat in self.new_chats(chats)))

    # Faults

    @contextlib.asynccontextmanager
    async def fault(self, what: str) -> AsyncIterator[Fault]:
        fault = Fault(what, time.monotonic())
        self.faults.append(fault)
        try:
            yield fault
        finally:
            fault.end = time.monotonic()

    async def kill(self, process: SoroProcess, down: float) -> None:
        """kill -9 ``process`` and start it again ``down`` seconds later (as compose's restart policy would)."""
        async with self.fault(f"kill -9 {process.name}"):
            await process.kill()
            await asyncio.sleep(down)
            if process is self.bot:
                await self.start_bot(wait=False)
            else:
                await self.start_worker(process, wait=False)

    async def terminate_database_backends(self) -> int:
        """pg_terminate_backend on every connection to this test's database (and no other)."""
        server, _, name = self.database_url.rpartition("/")
        engine = create_async_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as connection:
                rows = await connection.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :name AND pid <> pg_backend_pid()"
                    ),
                    {"name": name},
                )
                return len(rows.all())
        finally:
            await engine.dispose()

    # What the users saw

    async def settled(self, timeout: float = 150) -> bool:
        """Wait until nothing is in flight: every turn ended and no message waits for a turn (so no final is still
        owed). False if that did not happen within ``timeout``; what is still owed then counts as lost."""
        engine = create_async_engine(self.database_url)

        async def quiet() -> bool:
            if any(not t.delivery.done.is_set() for t in self.turns):
                return False
            try:
                async with engine.connect() as connection:
                    open_turns = await connection.scalar(
                        select(func.count())
                        .select_from(Request)
                        .where(Request.state.in_([s for s in RequestState if s.open]))
                    )
                    waiting = await connection.scalar(
                        select(func.count())
                        .select_from(Message)
                        .where(Message.role == Role.USER, Message.request_id.is_(None))
                    )
            except Exception:  # the database may be the thing that is down
                return False
            return open_turns == 0 and waiting == 0

        try:
            await eventually(quiet, timeout, 0.5, what="every turn to end")
        except AssertionError:
            self.unsettled = True
            return False
        finally:
            await engine.dispose()
        await asyncio.sleep(2)  # a last duplicate would be on its way by now
        return True

    def row(self, scenario: str) -> Row:
        accepted = [t for t in self.turns if t.accepted]
        per_chat: dict[int, int] = {}
        for turn in accepted:
            per_chat[turn.chat] = per_chat.get(turn.chat, 0) + 1
        lost = duplicates = in_flight = 0
        cuts = [f.start for f in self.faults if f.what == f"kill -9 {self.bot.name}"] + self.api.cuts
        for chat, owed in per_chat.items():
            calls = self.api.sent("sendMessage", chat)
            finals = len(calls)
            lost += max(0, owed - finals)
            duplicates += max(0, finals - owed)
            # A copy of an answer that reached the Bot API around a kill of the bot or a cut of its link, sent
            # again after it.
            in_flight += sum(
                1
                for first, again in itertools.combinations(calls, 2)
                if first.params.get("text") == again.params.get("text")
                and any(abs(first.at - cut) <= IN_FLIGHT_SECONDS and again.at > cut for cut in cuts)
            )
        finished = [t for t in accepted if t.final_at is not None]
        notices: dict[str, int] = {}
        for turn in finished:
            if (key := notice_of(turn.final_text or "")) is not None:
                notices[key] = notices.get(key, 0) + 1
        told = sum(notices.values())
        latencies = sorted(t.final_at - t.sent_at for t in finished if t.final_at is not None)
        return Row(
            scenario=scenario,
            accepted=len(accepted),
            answered=len(finished) - told,
            told=told,
            lost=lost,
            duplicates=duplicates,
            in_flight_at_a_cut=min(in_flight, duplicates),
            p50=percentile(latencies, 0.50),
            p95=percentile(latencies, 0.95),
            latency_max=latencies[-1] if latencies else 0.0,
            recovery=self.recovery(),
            faults=len(self.faults),
            unexpected_exits=sum(len(p.unexpected_exits) for p in self.processes),
            seconds=time.monotonic() - self.started,
            notices=notices,
        )

    def recovery(self) -> float | None:
        """The longest time, after a fault ended, until every message sent before its end had its final message
        (None when one never got it)."""
        worst = 0.0
        for fault in self.faults:
            end = fault.end if fault.end is not None else time.monotonic()
            owed = [t for t in self.turns if t.accepted and t.sent_at <= end and (t.final_at or end + 1) > end]
            if any(t.final_at is None for t in owed):
                return None
            worst = max([worst, *((t.final_at or end) - end for t in owed)])
        return worst

    # What the logs must never say

    def leaks(self) -> list[str]:
        """Log lines of any process, at any level, that carry message text, a phone number or a secret."""
        needles = {name if name.startswith("phone") else f"secret {name}": v for name, v in self.secrets.items() if v}
        for turn in self.turns[:: max(1, len(self.turns) // 100)]:
            needles[f"the question of chat {turn.chat}"] = turn.text.split(" ", 1)[1][:20]
            if turn.final_text and not is_notice(turn.final_text) and len(turn.final_text) >= 24:
                needles[f"an answer in chat {turn.chat}"] = turn.final_text[:24]
        found = []
        for process in self.processes:
            for number, line in enumerate(process.output().splitlines(), 1):
                if MARKER.search(line):
                    found.append(f"{process.name}:{number} a message's marker: {line[:300]}")
                    continue
                for what, needle in needles.items():
                    if needle in line:
                        found.append(f"{process.name}:{number} {what}: {line[:300]}")
                        break
        return found

    def unexpected_exits(self) -> dict[str, list[tuple[int, float]]]:
        return {p.name: p.unexpected_exits for p in self.processes if p.unexpected_exits}

    def tail(self, process: SoroProcess, lines: int = 30) -> str:
        return "\n".join(process.output().splitlines()[-lines:])


def report(row: Row, stack: ChaosStack) -> None:
    """Print the scenario's row, and append it to SORO_CHAOS_REPORT (JSON lines) when that is set."""
    print(f"\n{table([row])}\nnotices: {row.notices or 'none'}\n")
    if path := os.environ.get("SORO_CHAOS_REPORT"):
        with Path(path).open("a", encoding="utf-8") as out:
            out.write(json.dumps({**row.__dict__, "at": datetime.now(UTC).isoformat()}) + "\n")
    exits = stack.unexpected_exits()
    for name in exits:
        print(
            f"--- {name} exited unasked; its last lines:\n{stack.tail(next(p for p in stack.processes if p.name == name))}"
        )


@contextlib.asynccontextmanager
async def chaos_stack(
    workdir: Path, database_url: str, vllm: ServedModel, **settings: str
) -> AsyncIterator[ChaosStack]:
    """Everything started, and everything this started stopped again (by pid) however the test ends."""
    redis = PrivateRedis(workdir / "redis")
    api = BotApiStandIn(f"{random.randrange(10**8, 10**9)}:{secrets.token_hex(16)}")
    vllm_link = TcpProxy("127.0.0.1", vllm.port)
    secret_values = {
        "webhook": "w" + secrets.token_hex(16),
        "telegram token": api.token.split(":", 1)[1],
        "model server key": "k" + secrets.token_hex(12),
        **{k: v for k, v in settings.items() if k in ("sms_mo_secret", "sms_kannel_password")},
    }
    phones = settings.pop("phones", "")
    http_port = int(settings.pop("http_port", "0")) or free_port()
    common = {
        "database_url": database_url,
        "redis_url": "",  # below, once the private Redis has its port
        "stream_prefix": f"chaos-{uuid.uuid4().hex[:8]}",
        "log_level": "DEBUG",  # every level is checked for leaks
        "http_host": "127.0.0.1",
        "user_messages_per_minute": "1000",
        "user_messages_per_day": "100000",
        "llm_max_tokens": "24",
        # The test vLLM takes 512 tokens; ten turns of history would pass that with the default budget.
        "context_token_budget": "320",
        "llm_model": vllm.model,
        "llm_api_key": secret_values["model server key"],
        "telegram_global_rate": "100",
        **settings,
    }
    started: list[Any] = []
    bot: SoroProcess | None = None
    workers: list[SoroProcess] = []
    try:
        await redis.start()
        started.append(redis)
        common["redis_url"] = redis.url
        await api.start(link=True)
        started.append(api)
        await vllm_link.start()
        started.append(vllm_link)
        bot_env = {
            **common,
            "telegram_token": api.token,
            "telegram_api_base": api.base,
            "webhook_url": f"http://127.0.0.1:{http_port}",
            "webhook_secret": secret_values["webhook"],
            "http_port": str(http_port),
        }
        logs = workdir / "logs"
        bot = SoroProcess("bot", "bot", soro_env(**bot_env), logs / "bot.log")
        for index in range(WORKERS):
            env = {**common, "llm_base_url": f"{vllm_link.url}/v1", "worker_metrics_port": str(free_port())}
            workers.append(
                SoroProcess(f"worker-{index + 1}", "worker", soro_env(**env), logs / f"worker-{index + 1}.log")
            )
        stack = ChaosStack(workdir, database_url, redis, vllm, api, vllm_link, bot, workers, secret_values)
        # A full number in any spelling carries its national part; a log line may show the last four digits.
        stack.secrets.update({f"phone number {n}": n[-9:] for n in phones.split(",") if n})
        await asyncio.gather(stack.start_bot(), *(stack.start_worker(w) for w in workers))
        stack.started = time.monotonic()
        yield stack
    finally:
        for process in [*workers, *([bot] if bot is not None else [])]:
            with contextlib.suppress(Exception):
                await process.stop(timeout=10)
        for thing in reversed(started):
            with contextlib.suppress(Exception):
                await thing.stop()


async def during(seconds: float, action: Callable[[], Any]) -> None:
    """Run ``action`` after ``seconds``."""
    await asyncio.sleep(seconds)
    result = action()
    if asyncio.iscoroutine(result):
        await result
