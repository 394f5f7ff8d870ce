"""The inference worker: queued turns → an OpenAI-compatible server (vLLM) → reply events.

Stateless; run as many as needed, on any host: they share one consumer group. A request is acked only after
its final event is written, so a worker that dies leaves its requests pending, and another worker claims them
once they have been idle for the visibility timeout. A live worker keeps its requests' idle time at zero.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import re
import signal
import socket
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from prometheus_client import start_http_server
from redis.exceptions import ResponseError

from inference.llm import UNAVAILABLE_KINDS, LlmClient, ModelRefused, ModelUnavailable, stream_chat
from inference.queue import (
    WORKERS_GROUP,
    Delivery,
    ReplyEvent,
    ReplyKind,
    RequestQueue,
    StreamNames,
    TurnRequest,
    redis_client,
)
from soro.group_commit import GroupCommit
from soro.loop import settle_heap
from soro.metrics import WorkerMetrics
from soro.outage import REDIS, Backoff, outages
from soro.settings import Settings

log = logging.getLogger(__name__)

# How long past a request's deadline a finished answer still waits for Redis to take it.
SETTLE_GRACE_SECONDS = 30.0


@dataclass
class Generation:
    text: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    first_token_seconds: float = 0.0
    seconds: float = 0.0
    finish_reason: str = ""
    model: str = ""


class DeadlinePassed(Exception):
    pass


class Worker:
    def __init__(
        self,
        settings: Settings,
        queue: RequestQueue,
        llm: LlmClient,
        metrics: WorkerMetrics,
        consumer: str | None = None,
        clients: Mapping[str, LlmClient] | None = None,
    ) -> None:
        self.settings = settings
        self.queue = queue
        self.llm = llm
        # Models served elsewhere (a candidate), by the name the bot routes turns to; the rest go to ``llm``.
        self.clients = dict(clients or {})
        self.metrics = metrics
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
        self.concurrency = settings.worker_concurrency
        self.inflight: dict[str, asyncio.Task[None]] = {}
        self.outages = outages(metrics.dependencies, "worker", (REDIS,))
        # Answers in flight get their tokens in the same steps of the model, so their previews come together:
        # those published while a round trip is under way share the next one.
        self.replies: GroupCommit[tuple[ReplyEvent, str, str | None], None] = GroupCommit(
            self.queue.publish_many, linger=0, max_batch=256
        )
        self.metrics.capacity.set(self.concurrency)
        self.metrics.prime(llm_error_kinds=UNAVAILABLE_KINDS)

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set, then finish what is in flight (unfinished requests stay pending).

        Redis may go away and come back at any time: each round of the loop rides out its outage with back-off.
        """
        heartbeat = asyncio.create_task(self._heartbeat(stop))
        visibility_ms = int(self.settings.visibility_timeout_seconds * 1000)
        next_claim = 0.0
        grouped = False
        backoff = Backoff(base=0.2, cap=5.0)  # a worker is idle while Redis is away: look again soon
        try:
            while not stop.is_set():
                free = self.concurrency - len(self.inflight)
                if free <= 0:
                    await asyncio.wait(list(self.inflight.values()), return_when=asyncio.FIRST_COMPLETED)
                    continue
                async with self.outages.guard(REDIS, backoff=backoff, stop=stop):
                    if not grouped:  # also after a Redis that lost its data came back empty
                        await self.queue.ensure_group(self.queue.names.requests, WORKERS_GROUP)
                        grouped = True
                    deliveries: list[Delivery] = []
                    if time.monotonic() >= next_claim:
                        deliveries = await self.queue.claim_stale(self.consumer, visibility_ms, free)
                        self.metrics.reclaimed.inc(len(deliveries))
                        next_claim = time.monotonic() + self.settings.visibility_timeout_seconds / 4
                    if not deliveries:
                        try:
                            deliveries = await self.queue.read(self.consumer, free, block_ms=500)
                        except ResponseError as exc:
                            if "NOGROUP" not in str(exc):
                                raise
                            grouped = False
                    for delivery in deliveries:
                        self._start(delivery)
        finally:
            if self.inflight:
                await asyncio.wait(list(self.inflight.values()), timeout=self.settings.request_deadline_seconds)
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat

    def _start(self, delivery: Delivery) -> None:
        task = asyncio.create_task(self.handle(delivery))
        self.inflight[delivery.entry_id] = task
        self.metrics.inflight.set(len(self.inflight))

        def done(_: asyncio.Task[None]) -> None:
            self.inflight.pop(delivery.entry_id, None)
            self.metrics.inflight.set(len(self.inflight))

        task.add_done_callback(done)

    async def _heartbeat(self, stop: asyncio.Event) -> None:
        # Several beats per visibility timeout: a late beat under CPU load must not let another worker take over.
        interval = self.settings.visibility_timeout_seconds / 4
        while not stop.is_set():
            await asyncio.sleep(interval)
            try:
                await self.queue.keep_alive(self.consumer, list(self.inflight))
            except Exception as exc:  # a Redis blip must not kill the heartbeat; the next beat retries
                if self.outages.failed(exc) is None:
                    log.exception("heartbeat failed")

    async def handle(self, delivery: Delivery) -> None:
        request = delivery.request
        try:
            if delivery.attempt > self.settings.max_attempts:
                await self._dead_letter(delivery, f"failed {delivery.attempt - 1} attempts")
                return
            if request.expired():
                await self._expired(delivery)
                return
            self.metrics.queue_wait.observe(max(0.0, time.time() - request.created_at))
            try:
                generation = await self._generate_with_retries(request)
            except DeadlinePassed:
                await self._expired(delivery)
                return
            except ModelRefused as exc:
                self.metrics.llm_errors.labels(f"http_{exc.status}").inc()
                await self._dead_letter(delivery, f"model server refused the request: HTTP {exc.status}")
                return
            # An answer is worth waiting for Redis to come back; a retry would generate it all again.
            await self._settle(request, lambda: self._publish(request, ReplyKind.FINAL, generation, ack=delivery))
            self.metrics.requests.labels("answered").inc()
        except Exception:
            # Left pending: another attempt (here or on another worker) follows after the visibility timeout.
            log.exception("request %s failed on attempt %d", request.request_id, delivery.attempt)

    async def _generate_with_retries(self, request: TurnRequest) -> Generation:
        delay = 0.5
        while True:
            remaining = request.deadline - time.time()
            if remaining <= 0:
                raise DeadlinePassed
            try:
                return await asyncio.wait_for(self._generate(request), timeout=remaining)
            except TimeoutError as exc:
                raise DeadlinePassed from exc
            except ModelUnavailable as exc:
                self.metrics.llm_errors.labels(exc.kind).inc()
                log.warning("model server unavailable for %s (%s); retrying in %.1fs", request.request_id, exc, delay)
                await asyncio.sleep(min(delay, max(0.0, request.deadline - time.time())))
                delay = min(delay * 2, self.settings.llm_retry_max_seconds)

    async def _generate(self, request: TurnRequest) -> Generation:
        started = time.monotonic()
        result = Generation(model=request.model or self.settings.llm_model)
        last_partial = time.monotonic()
        published = 0
        seq = 0
        # The text grows in pieces, joined only when it is sent: ``result.text += …`` copies it at every token.
        pieces: list[str] = []
        length = 0
        # Whether a piece so far held something to show (each piece is looked at once, when it comes: looking
        # at the whole text at every token made an answer without partials quadratic in its length).
        visible = False
        # A model that runs far past an SMS budget is stopped: delivery trims to the budget anyway.
        hard_stop = request.char_budget * 2 if request.char_budget else None
        deltas = stream_chat(
            self.clients.get(result.model, self.llm),
            result.model,
            request.messages,
            request.max_tokens,
            self.settings.llm_temperature,
            self.settings.llm_stream_interval,
        )
        async for delta in deltas:
            if delta.completion_tokens is not None:
                result.prompt_tokens = delta.prompt_tokens or 0
                result.completion_tokens = delta.completion_tokens
            if delta.text:
                if not pieces:
                    result.first_token_seconds = time.monotonic() - started
                    self.metrics.time_to_first_token.observe(result.first_token_seconds)
                pieces.append(delta.text)
                length += len(delta.text)
                visible = visible or bool(printable(delta.text).strip())
            if delta.finish_reason:
                result.finish_reason = delta.finish_reason
            now = time.monotonic()
            # The first words go out at once (time to first visible text waits for them); later ones are paced.
            if request.stream_partials and (
                (published == 0 and visible)
                or (
                    now - last_partial >= self.settings.partial_interval_seconds
                    and length - published >= self.settings.partial_min_chars
                )
            ):
                seq += 1
                result.text = "".join(pieces)
                try:
                    await self._publish(request, ReplyKind.PARTIAL, result, seq=seq)
                except Exception as exc:  # a preview lost to a Redis blip is not worth the answer
                    if self.outages.failed(exc) is None:
                        raise
                last_partial, published = now, length
            if hard_stop is not None and length > hard_stop:
                result.finish_reason = "length"
                break
        await deltas.aclose()
        result.text = "".join(pieces)
        result.seconds = time.monotonic() - started
        self.metrics.generation_time.observe(result.seconds)
        self.metrics.generated_tokens.inc(result.completion_tokens)
        self.metrics.prompt_tokens.inc(result.prompt_tokens)
        return result

    async def _publish(
        self,
        request: TurnRequest,
        kind: ReplyKind,
        generation: Generation,
        seq: int = 0,
        ack: Delivery | None = None,
    ) -> None:
        """Publish a reply event; with ``ack``, the request's last, acked with it."""
        event = ReplyEvent(
            request_id=request.request_id,
            conversation_id=request.conversation_id,
            channel=request.channel,
            kind=kind,
            text=printable(generation.text).strip() if kind is ReplyKind.FINAL else printable(generation.text),
            seq=seq,
            model=generation.model,
            prompt_tokens=generation.prompt_tokens,
            completion_tokens=generation.completion_tokens,
            queue_wait_seconds=0.0,
            first_token_seconds=generation.first_token_seconds,
            generation_seconds=generation.seconds,
            finish_reason=generation.finish_reason,
        )
        await self.replies.submit((event, request.reply_stream, ack.entry_id if ack is not None else None))

    async def _expired(self, delivery: Delivery) -> None:
        request = delivery.request
        await self._settle(request, lambda: self._publish(request, ReplyKind.EXPIRED, Generation(), ack=delivery))
        self.metrics.requests.labels("expired").inc()

    async def _dead_letter(self, delivery: Delivery, reason: str) -> None:
        request = delivery.request
        log.error("request %s dead-lettered: %s", request.request_id, reason)
        await self._settle(request, lambda: self.queue.dead_letter(delivery, reason))
        await self._settle(request, lambda: self._publish(request, ReplyKind.FAILED, Generation(), ack=delivery))
        self.metrics.requests.labels("dead_letter").inc()

    async def _settle(self, request: TurnRequest, call: Callable[[], Awaitable[object]]) -> None:
        """A Redis call that ends a request, retried through an outage for as long as its answer still matters
        (past that, the request stays pending and the bot has told the user already)."""
        await self.outages.through(REDIS, call, request.deadline + SETTLE_GRACE_SECONDS, clock=time.time)


_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\ufffd]")


def printable(text: str) -> str:
    """Model text without control characters and replacement marks (a model can emit stray bytes, and
    PostgreSQL and phones reject NUL and friends)."""
    return _UNPRINTABLE.sub("", text)


def llm_client(settings: Settings, base_url: str | None = None) -> LlmClient:
    # Retries are ours (bounded by each request's deadline), not the client's.
    return LlmClient(base_url or settings.llm_base_url, settings.llm_api_key.get_secret_value())


def candidate_clients(settings: Settings) -> dict[str, LlmClient]:
    """The candidate model's own server, when it is served apart from the current model."""
    if settings.llm_candidate_model and settings.llm_candidate_base_url:
        return {settings.llm_candidate_model: llm_client(settings, settings.llm_candidate_base_url)}
    return {}


def serve_metrics(metrics: WorkerMetrics, host: str, first_port: int, ports: int) -> int | None:
    """Serve /metrics on the first free port of ``first_port``… (several workers may share a host); None when
    every one is taken: the worker still serves, unseen by Prometheus, which its operator is told."""
    for port in range(first_port, first_port + max(1, ports)):
        try:
            start_http_server(port, addr=host, registry=metrics.registry)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            continue
        return port
    log.error("ports %d-%d are all taken: this worker serves no /metrics", first_port, first_port + ports - 1)
    return None


async def run_worker(settings: Settings) -> None:
    metrics = WorkerMetrics()
    port = serve_metrics(metrics, settings.http_host, settings.worker_metrics_port, settings.worker_metrics_ports)
    redis = redis_client(settings.redis_url)
    queue = RequestQueue(redis, StreamNames(settings.stream_prefix))
    worker = Worker(settings, queue, llm_client(settings), metrics, clients=candidate_clients(settings))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    settle_heap()
    log.info(
        "worker %s serving %s at %s, /metrics on port %s",
        worker.consumer,
        settings.llm_model,
        settings.llm_base_url,
        port,
    )
    try:
        await worker.run(stop)
    finally:
        for client in (worker.llm, *worker.clients.values()):
            await client.close()
        await redis.aclose()
