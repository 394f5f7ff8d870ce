"""Pipeline overhead: the whole path (SQL → Redis Streams → worker → vLLM → delivery) vs. direct calls to vLLM.

Both sides send the same prompts (the system prompt and question the pipeline builds) with greedy decoding, so
they generate the same tokens; the difference is what the pipeline adds. At each concurrency, N conversations
ask at once, for a few rounds; latency is from the question to the whole answer. Direct and pipeline rounds
take turns, so a machine that slows down or speeds up meanwhile weighs on both sides alike. The bot side (accept,
delivery) runs in this process, the worker as a process of its own (`soro worker`), as they are deployed.

    python -m bench.pipeline                         # starts vLLM (CPU) with a tiny model
    python -m bench.pipeline --llm-base-url http://127.0.0.1:8000/v1 --model soro
    python -m bench.pipeline --database-url postgresql+asyncpg://… --known-users 200000   # a server run a while
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from bench.accept import SORO, add_known_users, cpu_seconds
from bot.channels.base import Sent
from bot.delivery import DeliveryLoop
from bot.pipeline import Inbound, Outcome, Target
from bot.services import Services
from bot.store.migrate import upgrade
from bot.store.models import Request, RequestState
from inference.llm import LlmClient, stream_chat
from inference.queue import ChatMessage
from inference.worker import llm_client
from soro.ports import free_port
from soro.settings import Settings
from soro.vllm_runtime import VllmOptions, VllmServer, build_tiny_model_dir

QUESTION = "Салом! Дар бораи кӯҳҳои Помир ба ман нақл кунед, лутфан."
CHANNEL = "bench"


@dataclass
class Result:
    latencies: list[float]
    tokens: int
    wall: float
    accepts: list[float] = field(default_factory=list)  # seconds spent accepting each (SQL + enqueue)
    queue_wait: float = 0.0  # mean seconds from enqueue to a worker starting
    generation: float = 0.0  # mean seconds of the model call in the worker
    worker_cpu: float = 0.0  # CPU seconds the worker spent
    requests: int = 0  # requests the worker finished

    def add(self, other: Result) -> None:
        self.latencies += other.latencies
        self.tokens += other.tokens
        self.wall += other.wall
        self.accepts += other.accepts

    @property
    def accept(self) -> float:
        return statistics.mean(self.accepts)

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies)

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.wall


class RecordingSender:
    """A channel that only notes when each final answer arrives."""

    channel = CHANNEL

    def __init__(self) -> None:
        self.finals: dict[str, asyncio.Future[float]] = {}

    def expect(self, request_id: str) -> asyncio.Future[float]:
        return self.finals.setdefault(request_id, asyncio.get_running_loop().create_future())

    async def send_partial(self, target: Target, text: str) -> bool:
        return False

    async def send_final(self, target: Target, text: str) -> Sent:
        self.expect(target.request_id).set_result(time.perf_counter())
        return Sent(text)


async def direct(
    client: LlmClient, settings: Settings, messages: list[ChatMessage], concurrency: int, rounds: int
) -> Result:
    """Concurrent streamed calls straight to the server, read the same lean way the worker reads them."""

    async def one() -> tuple[float, int]:
        started = time.perf_counter()
        tokens = 0
        async for delta in stream_chat(
            client, settings.llm_model, messages, settings.llm_max_tokens, 0.0, settings.llm_stream_interval
        ):
            tokens = delta.completion_tokens or tokens
        return time.perf_counter() - started, tokens

    latencies: list[float] = []
    tokens = 0
    started = time.perf_counter()
    for _ in range(rounds):
        for latency, count in await asyncio.gather(*(one() for _ in range(concurrency))):
            latencies.append(latency)
            tokens += count
    return Result(latencies, tokens, time.perf_counter() - started)


async def pipeline_round(services: Services, sender: RecordingSender, users: list[str]) -> tuple[Result, list[str]]:
    """One question from each user at once, through the pipeline: the round's result and its request ids."""
    accepting: list[float] = []

    async def one(user: str) -> tuple[float, str]:
        started = time.perf_counter()
        accepted = await services.pipeline.accept(Inbound(CHANNEL, user, QUESTION))
        accepting.append(time.perf_counter() - started)
        assert accepted.outcome is Outcome.QUEUED and accepted.request_id, accepted
        finished = await sender.expect(accepted.request_id)
        return finished - started, accepted.request_id

    started = time.perf_counter()
    answers = await asyncio.gather(*(one(user) for user in users))
    wall = time.perf_counter() - started
    # Tokens, queue wait and generation time come from the worker's metrics (see run_all).
    return Result([latency for latency, _ in answers], 0, wall, accepts=accepting), [rid for _, rid in answers]


async def recorded(services: Services, request_ids: list[str]) -> None:
    """Wait until these turns are recorded as answered: the answer is sent before it is recorded."""
    statement = select(func.count()).where(Request.id.in_(request_ids), Request.state == RequestState.ANSWERED)
    for _ in range(1000):
        async with services.pipeline.engine.connect() as connection:
            if await connection.scalar(statement) == len(request_ids):
                return
        await asyncio.sleep(0.005)
    raise TimeoutError("answers sent but not recorded after 5 s")


@asynccontextmanager
async def model_server(args: argparse.Namespace, settings: Settings) -> AsyncIterator[tuple[str, str]]:
    if args.llm_base_url:
        yield args.llm_base_url, args.model
        return
    with tempfile.TemporaryDirectory(prefix="soro-bench-") as folder:
        model_dir = build_tiny_model_dir(settings.vllm_venv, Path(folder) / "model")
        options = VllmOptions.for_settings(settings, model_dir, "soro-bench")
        async with VllmServer(options) as server:
            yield server.base_url, server.model


async def main(args: argparse.Namespace) -> list[tuple[int, Result, Result]]:
    """Run every concurrency level and print the tables; the rows (concurrency, direct, pipeline) are returned."""
    base = Settings()
    args.stream_interval = args.stream_interval or base.llm_stream_interval
    async with model_server(args, base) as (base_url, model):
        with tempfile.TemporaryDirectory(prefix="soro-bench-db-") as folder:
            database_url = args.database_url or f"sqlite+aiosqlite:///{folder}/bench.db"
            await asyncio.to_thread(upgrade, database_url)
            await add_known_users(database_url, args.known_users)
            settings = base.model_copy(
                update={
                    "database_url": database_url,
                    "llm_base_url": base_url,
                    "llm_model": model,
                    "llm_temperature": 0.0,
                    "llm_max_tokens": args.max_tokens,
                    "llm_stream_interval": args.stream_interval,
                    "stream_prefix": f"bench-{uuid.uuid4().hex[:8]}",
                    "worker_concurrency": max(args.concurrency),
                    "backlog_limit": 10_000,
                    "user_messages_per_minute": 10_000,
                    "user_messages_per_day": 100_000,
                    # A returning user's history is read and stored as for any next turn, but the prompt keeps
                    # only the question: the same prompt as the direct calls, within the tiny model's window.
                    **({"context_token_budget": 1} if args.returning else {}),
                }
            )
            rows = await run_all(settings, args)
    print_table(rows, args)
    return rows


class WorkerProcess:
    """``soro worker`` as a process of its own (on the cores this one may use), read through its /metrics and
    ``/proc``: what it costs is apart from the bot side's, as in a deployment."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.port = free_port()
        self.process: asyncio.subprocess.Process | None = None
        self.http = aiohttp.ClientSession()

    async def start(self, timeout: float = 60) -> None:
        worker = {
            "llm_base_url": self.settings.llm_base_url,
            "llm_model": self.settings.llm_model,
            "llm_temperature": self.settings.llm_temperature,
            "llm_stream_interval": self.settings.llm_stream_interval,
            "redis_url": self.settings.redis_url,
            "stream_prefix": self.settings.stream_prefix,
            "worker_concurrency": self.settings.worker_concurrency,
            "worker_metrics_port": self.port,
            "worker_metrics_ports": 1,
        }
        env = {**os.environ, **{f"SORO_{name.upper()}": str(value) for name, value in worker.items()}}
        self.process = await asyncio.create_subprocess_exec(*SORO, "worker", env=env, stdout=asyncio.subprocess.DEVNULL)
        for _ in range(int(timeout / 0.1)):
            if self.process.returncode is not None:
                raise RuntimeError(f"the worker exited with {self.process.returncode}")
            with contextlib.suppress(aiohttp.ClientError):
                await self.totals()
                return
            await asyncio.sleep(0.1)
        raise TimeoutError(f"the worker served no /metrics within {timeout:.0f} s")

    async def totals(self) -> dict[str, float]:
        async with self.http.get(f"http://127.0.0.1:{self.port}/metrics") as response:
            response.raise_for_status()
            samples = {
                sample.name: sample.value
                for family in text_string_to_metric_families(await response.text())
                for sample in family.samples
            }
        return {
            "tokens": samples["soro_generated_tokens_total"],
            "wait": samples["soro_queue_wait_seconds_sum"],
            "count": samples["soro_queue_wait_seconds_count"],
            "generation": samples["soro_generation_seconds_sum"],
        }

    def cpu_seconds(self) -> float:
        assert self.process is not None
        return cpu_seconds([self.process.pid])

    async def close(self) -> None:
        await self.http.close()
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            await asyncio.wait_for(self.process.wait(), 30)


async def run_all(settings: Settings, args: argparse.Namespace) -> list[tuple[int, Result, Result]]:
    services = Services.create(settings)
    sender = RecordingSender()
    worker = WorkerProcess(settings)
    delivery = DeliveryLoop(settings, services.pipeline, services.queue, {CHANNEL: sender}, services.metrics)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(delivery.run(stop))]
    client = llm_client(settings)
    # The exact prompt the pipeline sends for a first question.
    messages = [ChatMessage("system", settings.system_prompt), ChatMessage("user", QUESTION)]
    rows = []
    try:
        await worker.start()
        await direct(client, settings, messages, 4, 1)  # warm-up
        await pipeline_round(services, sender, [uuid.uuid4().hex[:12] for _ in range(4)])
        for concurrency in args.concurrency:
            users = [uuid.uuid4().hex[:12] for _ in range(concurrency)]
            direct_result, pipeline_result = Result([], 0, 0.0), Result([], 0, 0.0)
            before, cpu_before = await worker.totals(), worker.cpu_seconds()
            for _ in range(max(1, args.requests // concurrency)):
                direct_result.add(await direct(client, settings, messages, concurrency, 1))
                if not args.returning:
                    users = [uuid.uuid4().hex[:12] for _ in range(concurrency)]
                answered, request_ids = await pipeline_round(services, sender, users)
                pipeline_result.add(answered)
                if args.returning:  # the next question must find the turn recorded, not join it
                    await recorded(services, request_ids)
            await asyncio.sleep(0.2)  # the worker acks the last requests after their final replies
            after, cpu_after = await worker.totals(), worker.cpu_seconds()
            pipeline_result.worker_cpu = cpu_after - cpu_before
            pipeline_result.tokens = int(after["tokens"] - before["tokens"])
            count = after["count"] - before["count"]
            pipeline_result.requests = int(count)
            pipeline_result.queue_wait = (after["wait"] - before["wait"]) / count
            pipeline_result.generation = (after["generation"] - before["generation"]) / count
            rows.append((concurrency, direct_result, pipeline_result))
            print(f"… {concurrency} concurrent done", flush=True)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        await worker.close()
        await client.close()
        keys = [key async for key in services.redis.scan_iter(f"{settings.stream_prefix}:*")]
        if keys:
            await services.redis.delete(*keys)
        await services.close()
    return rows


def print_table(rows: list[tuple[int, Result, Result]], args: argparse.Namespace) -> None:
    users = "the same users every round" if args.returning else "new users every round"
    print(
        f"\nmax_tokens={args.max_tokens}, {args.requests} requests per concurrency level, greedy decoding, "
        f"{args.stream_interval} tokens per streamed event, {users}\n"
    )
    header = (
        "| concurrent | direct p50 s | pipeline p50 s | latency overhead | direct tok/s | pipeline tok/s "
        "| throughput ratio |"
    )
    print(header)
    print("|" + "|".join("---" for _ in range(7)) + "|")
    for concurrency, d, p in rows:
        overhead = (p.p50 / d.p50 - 1) * 100
        ratio = p.tokens_per_second / d.tokens_per_second * 100
        print(
            f"| {concurrency} | {d.p50:.3f} | {p.p50:.3f} | {overhead:+.1f} % | {d.tokens_per_second:.0f} "
            f"| {p.tokens_per_second:.0f} | {ratio:.1f} % |"
        )
    print("\nWhere a pipeline request's time goes (means, seconds):\n")
    print(
        "| concurrent | direct call | accept (SQL + enqueue) | queue wait | model call in worker | end to end "
        "| added around the model call ms |"
    )
    print("|---|---|---|---|---|---|---|")
    for concurrency, d, p in rows:
        end_to_end = statistics.mean(p.latencies)
        print(
            f"| {concurrency} | {statistics.mean(d.latencies):.3f} | {p.accept:.3f} | {p.queue_wait:.3f} "
            f"| {p.generation:.3f} | {end_to_end:.3f} | {(end_to_end - p.generation) * 1000:.1f} |"
        )
    print("\nWorker CPU (its own process: reading the stream, the model's stream, partial and final replies):\n")
    print("| concurrent | requests | tokens | worker CPU ms / request | worker CPU µs / token |")
    print("|---|---|---|---|---|")
    for concurrency, _, p in rows:
        print(
            f"| {concurrency} | {p.requests} | {p.tokens} | {p.worker_cpu * 1000 / max(p.requests, 1):.2f} "
            f"| {p.worker_cpu * 1e6 / max(p.tokens, 1):.0f} |"
        )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--llm-base-url", help="use this OpenAI-compatible server instead of starting vLLM")
    parser.add_argument("--model", default="soro", help="served model name with --llm-base-url")
    parser.add_argument("--database-url", help="default: a temporary SQLite file")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--requests", type=int, default=128, help="requests per concurrency level")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument(
        "--stream-interval", type=int, help="tokens per streamed event, both sides (default: SORO_LLM_STREAM_INTERVAL)"
    )
    parser.add_argument(
        "--known-users", type=int, default=0, help="users stored before the run, who do not ask (default: none)"
    )
    parser.add_argument(
        "--returning",
        action="store_true",
        help="the same users ask again every round, so later rounds are next turns that read the history "
        "(the prompt keeps only the question); default: new users every round",
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
