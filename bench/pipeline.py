"""Pipeline overhead: the whole path (SQL → Redis Streams → worker → vLLM → delivery) vs. direct calls to vLLM.

Both sides send the same prompts (the system prompt and question the pipeline builds) with greedy decoding, so
they generate the same tokens; the difference is what the pipeline adds. At each concurrency, N conversations
ask at once, for a few rounds; latency is from the question to the whole answer.

    python bench/pipeline.py                         # starts vLLM (CPU) with a tiny model
    python bench/pipeline.py --llm-base-url http://127.0.0.1:8000/v1 --model soro
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from redis.asyncio import Redis

from bot.channels.base import Sent
from bot.delivery import DeliveryLoop
from bot.pipeline import Inbound, Outcome, Target
from bot.services import Services
from bot.store.migrate import upgrade
from inference.llm import LlmClient, stream_chat
from inference.queue import ChatMessage, RequestQueue, StreamNames
from inference.worker import Worker, llm_client
from soro.metrics import WorkerMetrics
from soro.settings import Settings
from soro.vllm_runtime import VllmOptions, VllmServer, build_tiny_model_dir

QUESTION = "Салом! Дар бораи кӯҳҳои Помир ба ман нақл кунед, лутфан."
CHANNEL = "bench"


@dataclass
class Result:
    latencies: list[float]
    tokens: int
    wall: float
    accept: float = 0.0  # mean seconds spent accepting (SQL + enqueue)
    queue_wait: float = 0.0  # mean seconds from enqueue to a worker starting
    generation: float = 0.0  # mean seconds of the model call in the worker
    worker_cpu: float = 0.0  # CPU seconds the worker spent
    requests: int = 0  # requests the worker finished

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


async def through_pipeline(services: Services, sender: RecordingSender, concurrency: int, rounds: int) -> Result:
    accepting: list[float] = []

    async def one(user: str) -> float:
        started = time.perf_counter()
        accepted = await services.pipeline.accept(Inbound(CHANNEL, user, QUESTION))
        accepting.append(time.perf_counter() - started)
        assert accepted.outcome is Outcome.QUEUED and accepted.request_id, accepted
        finished = await sender.expect(accepted.request_id)
        return finished - started

    latencies: list[float] = []
    started = time.perf_counter()
    for _ in range(rounds):
        users = [uuid.uuid4().hex[:12] for _ in range(concurrency)]
        latencies += await asyncio.gather(*(one(user) for user in users))
    # Tokens, queue wait and generation time come from the worker's metrics (see run_all).
    return Result(latencies, 0, time.perf_counter() - started, accept=statistics.mean(accepting))


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


async def main(args: argparse.Namespace) -> None:
    base = Settings()
    args.stream_interval = args.stream_interval or base.llm_stream_interval
    async with model_server(args, base) as (base_url, model):
        with tempfile.TemporaryDirectory(prefix="soro-bench-db-") as folder:
            database_url = args.database_url or f"sqlite+aiosqlite:///{folder}/bench.db"
            await asyncio.to_thread(upgrade, database_url)
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
                }
            )
            rows = await run_all(settings, args)
    print_table(rows, args)


class WorkerThread:
    """The worker on an event loop of its own, in a thread of its own, so the CPU time of that thread is the
    worker's (its Redis connections and HTTP client included), apart from the bot side's."""

    def __init__(self, settings: Settings, metrics: WorkerMetrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.ready = threading.Event()
        self.thread = threading.Thread(target=asyncio.run, args=(self._main(),), name="worker", daemon=True)
        self.thread.start()
        self.ready.wait(30)

    async def _main(self) -> None:
        redis = Redis.from_url(self.settings.redis_url)
        queue = RequestQueue(redis, StreamNames(self.settings.stream_prefix))
        worker = Worker(self.settings, queue, llm_client(self.settings), self.metrics)
        self.loop = asyncio.get_running_loop()
        self.stop = asyncio.Event()
        self.ready.set()
        try:
            await worker.run(self.stop)
        finally:
            await worker.llm.close()
            await redis.aclose()

    def cpu_seconds(self) -> float:
        assert self.thread.ident is not None
        return time.clock_gettime(time.pthread_getcpuclockid(self.thread.ident))

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(60)


async def run_all(settings: Settings, args: argparse.Namespace) -> list[tuple[int, Result, Result]]:
    services = Services.create(settings)
    sender = RecordingSender()
    worker_metrics = WorkerMetrics()
    worker = WorkerThread(settings, worker_metrics)
    delivery = DeliveryLoop(settings, services.pipeline, services.queue, {CHANNEL: sender}, services.metrics)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(delivery.run(stop))]
    client = llm_client(settings)
    # The exact prompt the pipeline sends for a first question.
    messages = [ChatMessage("system", settings.system_prompt), ChatMessage("user", QUESTION)]
    rows = []
    try:
        await direct(client, settings, messages, 4, 1)  # warm-up
        for concurrency in args.concurrency:
            rounds = max(1, args.requests // concurrency)
            direct_result = await direct(client, settings, messages, concurrency, rounds)
            before, cpu_before = _totals(worker_metrics), worker.cpu_seconds()
            pipeline_result = await through_pipeline(services, sender, concurrency, rounds)
            await asyncio.sleep(0.2)  # the worker acks the last requests after their final replies
            after, cpu_after = _totals(worker_metrics), worker.cpu_seconds()
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
        await asyncio.to_thread(worker.close)
        await client.close()
        keys = [key async for key in services.redis.scan_iter(f"{settings.stream_prefix}:*")]
        if keys:
            await services.redis.delete(*keys)
        await services.close()
    return rows


def _totals(metrics: WorkerMetrics) -> dict[str, float]:
    def histogram(h: object, suffix: str) -> float:
        return next(s.value for s in h.collect()[0].samples if s.name.endswith(suffix))  # type: ignore[attr-defined]

    return {
        "tokens": metrics.generated_tokens._value.get(),
        "wait": histogram(metrics.queue_wait, "_sum"),
        "count": histogram(metrics.queue_wait, "_count"),
        "generation": histogram(metrics.generation_time, "_sum"),
    }


def print_table(rows: list[tuple[int, Result, Result]], args: argparse.Namespace) -> None:
    print(
        f"\nmax_tokens={args.max_tokens}, {args.requests} requests per concurrency level, greedy decoding, "
        f"{args.stream_interval} tokens per streamed event\n"
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
    print("| concurrent | direct call | accept (SQL + enqueue) | queue wait | model call in worker | end to end |")
    print("|---|---|---|---|---|---|")
    for concurrency, d, p in rows:
        print(
            f"| {concurrency} | {statistics.mean(d.latencies):.3f} | {p.accept:.3f} | {p.queue_wait:.3f} "
            f"| {p.generation:.3f} | {statistics.mean(p.latencies):.3f} |"
        )
    print("\nWorker CPU (its own thread: reading the stream, the model's stream, partial and final replies):\n")
    print("| concurrent | requests | tokens | worker CPU ms / request | worker CPU µs / token |")
    print("|---|---|---|---|---|")
    for concurrency, _, p in rows:
        print(
            f"| {concurrency} | {p.requests} | {p.tokens} | {p.worker_cpu * 1000 / max(p.requests, 1):.2f} "
            f"| {p.worker_cpu * 1e6 / max(p.tokens, 1):.0f} |"
        )


def parse_args() -> argparse.Namespace:
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
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
