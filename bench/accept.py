"""What accepting a Telegram message costs the bot: updates/s, latency, CPU and memory per process.

Real ``soro bot`` processes (webhook with secret, no worker) on PostgreSQL or SQLite and the local Redis; the
Bot API is the tests' stand-in (``setWebhook`` only). 64 concurrent posters on loopback send text updates from
many chats; an update counts when the webhook answered 200, i.e. once it is stored and its turn is in the
stream. After a warm-up, the script reads the bot processes' CPU time and RSS from ``/proc`` before and after
the measured updates, and checks that every update is stored and every turn enqueued.

    .venv/bin/python -m bench.accept                                  # SQLite and PostgreSQL, 1 process
    .venv/bin/python -m bench.accept --databases postgresql --processes 1 2 --updates 2000
    .venv/bin/python -m bench.accept --code ../before                 # run another checkout's bot, same bench
    .venv/bin/python -m bench.accept --databases postgresql --known-users 200000   # a server that has run a while
    .venv/bin/python -m bench.accept --databases postgresql --returning           # next turns, read with history

``--code DIR`` runs the bot of another checkout (its ``PYTHONPATH``), so before and after compare in one run.
N processes: ``soro bot --processes N`` where the code has it, else N separate bots on N ports, the posters
spread over them. Each configuration is bounded by ``--timeout`` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from redis.asyncio import Redis
from sqlalchemy import insert, select, text, update
from sqlalchemy.ext.asyncio import create_async_engine

from bot.store.migrate import upgrade
from bot.store.models import Conversation, Message, Request, RequestState, Role, User, utcnow
from soro.ports import free_port
from tests.support.telegram_api import BotApiStandIn, text_update

SECRET = "bench-secret-token"
TOKEN = "123456:BENCH"
QUESTION = "Салом! Барои имтиҳони математика чӣ тавр омода шавам? Лутфан кӯтоҳ гӯед."
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
SORO = [sys.executable, "-c", "from soro.cli import app; app()"]  # `soro` of the checkout on PYTHONPATH
REPO_ROOT = Path(__file__).resolve().parent.parent
KNOWN_CHATS = 500_000_000  # addresses of --known-users, apart from the posted chats'
ANSWER = "Ҳар рӯз каме машқ кунед ва мавзӯъҳои гузаштаро такрор намоед."


@dataclass(frozen=True)
class Figures:
    code: str
    database: str
    processes: int
    updates: int
    seconds: float
    latencies: list[float]
    cpu_seconds: float
    rss_before: int  # bytes, summed over the bot processes
    rss_after: int
    stored: int
    enqueued: int


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (the bot processes of ``soro bot --processes N``), not multiprocessing's
    resource tracker."""
    out = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            for child in (task / "children").read_text().split():
                if b"resource_tracker" not in Path(f"/proc/{child}/cmdline").read_bytes():
                    out.extend(process_tree(int(child)))
    return out


def cpu_seconds(pids: Sequence[int]) -> float:
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLOCK_TICKS


def rss_bytes(pids: Sequence[int]) -> int:
    return sum(int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE for pid in pids)


async def add_known_users(url: str, count: int) -> None:
    """``count`` users who wrote before (chats the bench does not post from), so that finding the users of the
    posted updates is done among them, as on a server that has been running for a while."""
    if not count:
        return
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            now = utcnow()
            for start in range(0, count, 10_000):
                rows = [
                    {"channel": "telegram", "address": str(KNOWN_CHATS + i), "language": "tg", "opted_out": False}
                    for i in range(start, min(start + 10_000, count))
                ]
                await connection.execute(insert(User.__table__).values(created_at=now), rows)
        # Settled before measuring, as on a server where they came over months: vacuumed, with statistics,
        # written out (else autovacuum and the checkpointer would take this machine's CPU during the run).
        async with engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            postgresql = connection.dialect.name == "postgresql"
            for statement in ("VACUUM ANALYZE", "CHECKPOINT") if postgresql else ("ANALYZE",):
                await connection.execute(text(statement))
    finally:
        await engine.dispose()


async def answer_every_turn(url: str) -> None:
    """Record an answer to every turn in the database, as a worker and the delivery loop would have: the next
    message of each chat starts its conversation's next turn, which reads this history."""
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            turns = (await connection.execute(select(Request.id, Request.conversation_id))).all()
            now = utcnow()
            answers = [
                {"conversation_id": c, "role": Role.ASSISTANT, "text": ANSWER, "request_id": r, "answer_of": r}
                for r, c in turns
            ]
            if answers:
                await connection.execute(insert(Message.__table__).values(created_at=now), answers)
            await connection.execute(update(Request.__table__).values(state=RequestState.ANSWERED, finished_at=now))
            await connection.execute(update(Conversation.__table__).values(in_flight_request_id=None))
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def database(kind: str, server: str, known_users: int = 0) -> AsyncIterator[str]:
    """A fresh, migrated database for one configuration, with ``known_users`` in it."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="soro-accept-") as folder:
            url = f"sqlite+aiosqlite:///{folder}/soro.db"
            await asyncio.to_thread(upgrade, url)
            await add_known_users(url, known_users)
            yield url
        return
    name = f"soro_bench_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
        url = f"{server}/{name}"
        await asyncio.to_thread(upgrade, url)
        await add_known_users(url, known_users)
        yield url
    finally:
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


def supports_processes(code: Path) -> bool:
    return "processes" in (code / "soro" / "cli.py").read_text()


@contextlib.asynccontextmanager
async def bots(
    code: Path, processes: int, env: dict[str, str], timeout: float, profile: Path | None = None
) -> AsyncIterator[tuple[list[int], list[str]]]:
    """Started bot processes: (top-level pids, webhook URLs). ``profile``: a cProfile file of the (first) bot."""
    single = processes == 1 or supports_processes(code)
    ports = [free_port() for _ in range(1 if single else processes)]
    argv = [*SORO, "bot"]
    if profile is not None:
        argv[1:3] = ["-m", "cProfile", "-o", str(profile), "-m", "bench.soro_main"]
    if processes > 1 and single:
        argv += ["--processes", str(processes)]
    started = []
    for port in ports:
        process_env = {**env, "SORO_HTTP_PORT": str(port), "PYTHONPATH": str(code)}
        started.append(
            await asyncio.create_subprocess_exec(
                *argv, env=process_env, cwd=code, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
            )
        )
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        async with aiohttp.ClientSession() as http:
            for process, url in zip(started, urls, strict=True):
                await healthy(http, process, url, timeout)
        if processes > 1 and single:  # the workers behind one port: wait until all of them run
            for _ in range(int(timeout / 0.2)):
                if len(process_tree(started[0].pid)) > processes:
                    break
                await asyncio.sleep(0.2)
            await asyncio.sleep(1.0)
        yield [p.pid for p in started], [f"{url}/telegram/webhook" for url in urls]
    finally:
        for process in started:
            process.terminate()
        for process in started:
            try:
                await asyncio.wait_for(process.wait(), 15)
            except TimeoutError:
                process.kill()
                await process.wait()


async def healthy(http: aiohttp.ClientSession, process: asyncio.subprocess.Process, url: str, timeout: float) -> None:
    for _ in range(int(timeout / 0.2)):
        if process.returncode is not None:
            assert process.stderr is not None
            raise RuntimeError(f"soro bot exited: {(await process.stderr.read()).decode()[-2000:]}")
        with contextlib.suppress(aiohttp.ClientError):
            async with http.get(f"{url}/healthz") as response:
                if response.status == 200:
                    return
        await asyncio.sleep(0.2)
    raise RuntimeError("soro bot did not become healthy")


async def post_all(
    urls: Sequence[str], updates: Sequence[dict[str, Any]], concurrency: int, deadline: float
) -> tuple[list[float], int]:
    """Post ``updates`` with ``concurrency`` posters; (latency of each 200, count of other answers)."""
    latencies: list[float] = []
    failures = 0
    pending = iter(enumerate(updates))
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def poster() -> None:
            nonlocal failures
            for i, update in pending:
                if time.monotonic() > deadline:
                    return
                started = time.perf_counter()
                async with http.post(urls[i % len(urls)], json=update, headers=headers) as response:
                    await response.read()
                    if response.status == 200:
                        latencies.append(time.perf_counter() - started)
                    else:
                        failures += 1

        await asyncio.gather(*(poster() for _ in range(concurrency)))
    return latencies, failures


async def counts(database_url: str, redis: Redis, prefix: str) -> tuple[int, int]:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            stored = (await connection.execute(text("SELECT count(*) FROM messages"))).scalar_one()
    finally:
        await engine.dispose()
    return int(stored), int(await redis.xlen(f"{prefix}:requests"))


async def run_one(args: argparse.Namespace, code: Path, kind: str, processes: int, api: BotApiStandIn) -> Figures:
    async with database(kind, args.postgres, args.known_users) as database_url:
        prefix = f"bench-{uuid.uuid4().hex[:10]}"
        env = {
            **os.environ,
            "SORO_DATABASE_URL": database_url,
            "SORO_REDIS_URL": args.redis_url,
            "SORO_STREAM_PREFIX": prefix,
            "SORO_TELEGRAM_TOKEN": TOKEN,
            "SORO_TELEGRAM_API_BASE": api.base,
            "SORO_WEBHOOK_URL": "http://127.0.0.1",
            "SORO_WEBHOOK_SECRET": SECRET,
            "SORO_HTTP_HOST": "127.0.0.1",
            "SORO_USER_MESSAGES_PER_MINUTE": "100000",
            "SORO_USER_MESSAGES_PER_DAY": "100000",
            "SORO_BACKLOG_LIMIT": "1000000",
            "SORO_LOG_LEVEL": "WARNING",
        }
        redis = Redis.from_url(args.redis_url)
        try:
            async with bots(code, processes, env, args.timeout, args.profile) as (pids, urls):
                deadline = time.monotonic() + args.timeout
                warm = [text_update(10_000_000 + i, 9_000_000 + i, QUESTION) for i in range(args.warmup)]
                await post_all(urls, warm, args.concurrency, deadline)
                tree = [pid for top in pids for pid in process_tree(top)]
                chats = [1_000_000 + i % args.chats for i in range(args.updates)]
                if args.returning:  # each chat asked once and was answered
                    first = [text_update(20_000_000 + i, chat, QUESTION) for i, chat in enumerate(sorted(set(chats)))]
                    await post_all(urls, first, args.concurrency, deadline)
                    await answer_every_turn(database_url)
                stored_before, enqueued_before = await counts(database_url, redis, prefix)
                updates = [text_update(i + 1, chat, QUESTION, user_id=chat) for i, chat in enumerate(chats)]
                spy = await sampling(args.py_spy, tree[-1]) if args.py_spy else None
                cpu_before, rss_before = cpu_seconds(tree), rss_bytes(tree)
                started = time.perf_counter()
                latencies, failures = await post_all(urls, updates, args.concurrency, deadline)
                seconds = time.perf_counter() - started
                cpu_after, rss_after = cpu_seconds(tree), rss_bytes(tree)
                if spy is not None:
                    spy.send_signal(signal.SIGINT)
                    await spy.wait()
                if failures:
                    print(f"  {failures} updates were not answered 200", file=sys.stderr)
            stored, enqueued = await counts(database_url, redis, prefix)
        finally:
            keys = [key async for key in redis.scan_iter(f"{prefix}:*")]
            if keys:
                await redis.delete(*keys)
            await redis.aclose()
    return Figures(
        code="current" if code == REPO_ROOT else code.name,
        database=kind,
        processes=processes,
        updates=len(latencies),
        seconds=seconds,
        latencies=latencies,
        cpu_seconds=cpu_after - cpu_before,
        rss_before=rss_before,
        rss_after=rss_after,
        stored=stored - stored_before,
        enqueued=enqueued - enqueued_before,
    )


async def sampling(output: Path, pid: int) -> asyncio.subprocess.Process:
    """py-spy sampling one bot process while the measured updates arrive (collapsed stacks, for a flame graph)."""
    spy = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("py-spy")),  # the project's environment, which may not be on PATH
        "record",
        "--pid",
        str(pid),
        "--rate",
        "250",
        "--format",
        "raw",
        "--output",
        str(output),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    await asyncio.sleep(1.0)  # attached
    return spy


def quantile(values: Sequence[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def print_table(rows: Sequence[Figures]) -> None:
    print(
        "| code | database | processes | updates | updates/s | p50 ms | p99 ms | bot CPU ms / update "
        "| RSS MiB before → after | stored / enqueued |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    mib = 1 << 20
    for r in rows:
        if not r.latencies:
            print(f"| {r.code} | {r.database} | {r.processes} | 0 | – | – | – | – | – | – |")
            continue
        print(
            f"| {r.code} | {r.database} | {r.processes} | {r.updates} | {r.updates / r.seconds:.0f} "
            f"| {quantile(r.latencies, 50) * 1000:.0f} | {quantile(r.latencies, 99) * 1000:.0f} "
            f"| {r.cpu_seconds * 1000 / r.updates:.2f} "
            f"| {r.rss_before / mib:.0f} → {r.rss_after / mib:.0f} | {r.stored} / {r.enqueued} |"
        )


async def main(args: argparse.Namespace) -> list[Figures]:
    api = BotApiStandIn(TOKEN)
    await api.start()
    rows = []
    try:
        for code in args.code:
            for kind in args.databases:
                for processes in args.processes:
                    figures = await run_one(args, code.resolve(), kind, processes, api)
                    rows.append(figures)
                    print(f"{figures.code} {kind} ×{processes}: {figures.seconds:.1f} s", file=sys.stderr, flush=True)
    finally:
        await api.stop()
    print_table(rows)
    return rows


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--databases", nargs="+", choices=["sqlite", "postgresql"], default=["sqlite", "postgresql"])
    parser.add_argument("--processes", nargs="+", type=int, default=[1], help="bot processes, one run each")
    parser.add_argument("--updates", type=int, default=500)
    parser.add_argument("--chats", type=int, default=0, help="distinct chats (default: one per update)")
    parser.add_argument(
        "--known-users", type=int, default=0, help="users stored before the run, who do not post (default: none)"
    )
    parser.add_argument(
        "--returning",
        action="store_true",
        help="every chat asked once before and was answered: each measured update is its conversation's next "
        "turn, read with its history (default: new users)",
    )
    parser.add_argument("--warmup", type=int, default=64, help="updates posted before measuring")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per configuration at most")
    parser.add_argument("--code", nargs="+", type=Path, default=[REPO_ROOT], help="checkouts whose bot to run")
    parser.add_argument("--profile", type=Path, help="write a cProfile of the bot process to this file")
    parser.add_argument("--py-spy", type=Path, help="record py-spy samples of a bot process to this file")
    parser.add_argument("--redis-url", default=os.environ.get("SORO_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument(
        "--postgres", default=os.environ.get("SORO_TEST_POSTGRES", "postgresql+asyncpg://postgres@127.0.0.1:5432")
    )
    args = parser.parse_args(argv)
    args.chats = args.chats or args.updates
    return args


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
