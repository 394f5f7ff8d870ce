"""The delivery loop: reply events from the workers → channels, exactly once per request.

A final reply is sent only by whoever claims its request in SQL (``Pipeline.claim_final``), so a reply that
a regenerating worker produced twice, or a reply event read twice, reaches the user once. The loop also keeps
the contract's promises that need a clock: overdue requests get a notice, stranded turns are enqueued again,
and so are the turns a restarted Redis lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import socket
import time
from collections import OrderedDict
from collections.abc import Mapping

from redis.exceptions import ResponseError

from bot.channels.base import ChannelSender, Sent, Undeliverable
from bot.lost_turns import LostTurns
from bot.pipeline import Pipeline, Target
from bot.reading import render
from bot.sent_marks import SentMarks
from bot.texts import T, text
from inference.queue import DELIVERY_GROUP, ReplyEvent, ReplyKind, RequestQueue
from soro.group_commit import GroupCommit
from soro.metrics import BotMetrics
from soro.outage import DATABASE, REDIS, Backoff, Outages, describe, outages, pause
from soro.settings import Settings

log = logging.getLogger(__name__)

NOTICES = {ReplyKind.EXPIRED: T.EXPIRED, ReplyKind.FAILED: T.FAILED}
KIND_LABELS = {ReplyKind.FINAL: "answer", ReplyKind.EXPIRED: "expired", ReplyKind.FAILED: "failed"}
KEY_PRUNING_INTERVAL_SECONDS = 3600.0  # old inbound keys are forgotten by the first sweep, then hourly


class DeliveryLoop:
    def __init__(
        self,
        settings: Settings,
        pipeline: Pipeline,
        queue: RequestQueue,
        senders: Mapping[str, ChannelSender],
        metrics: BotMetrics,
        consumer: str | None = None,
        max_concurrent: int = 256,
        streams: Mapping[str, str] | None = None,
        process_outages: Outages | None = None,
    ) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.queue = queue
        self.senders = dict(senders)
        # reply stream → channel; by default each channel's shared stream
        self.streams = dict(streams or {queue.names.replies(channel): channel for channel in senders})
        self.metrics = metrics
        self.outages = process_outages or outages(metrics.dependencies, "bot")
        self.sent_marks = SentMarks(queue.redis, queue.names.prefix)
        self.lost_turns = LostTurns(pipeline.engine, queue, metrics)
        # Stable across restarts (one bot per host and port), so a restarted bot finds what it had not finished.
        self.consumer = consumer or f"{socket.gethostname()}-{settings.http_port}"
        self.slots = asyncio.Semaphore(max_concurrent)
        self.locks: dict[str, asyncio.Lock] = {}
        self.targets: OrderedDict[str, Target | None] = OrderedDict()
        self.first_visible: dict[str, float] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.claimed: set[str] = set()  # finals whose claim in SQL this loop holds while it sends them
        # Events handled at the same moment (the first previews of many answers) are acked in one round trip.
        self.acks: GroupCommit[tuple[str, str], None] = GroupCommit(queue.ack_replies, linger=0, max_batch=256)
        self.keys_pruned_at: float | None = None  # monotonic time of the last pruning of old inbound keys
        self.lease_seconds = 60.0

    async def run(self, stop: asyncio.Event) -> None:
        readers = [asyncio.create_task(self._read(stream, stop)) for stream in self.streams]
        housekeeping = asyncio.create_task(self._housekeeping(stop))
        try:
            await stop.wait()
        finally:
            for task in (*readers, housekeeping):
                task.cancel()
            for task in (*readers, housekeeping):
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if self.tasks:
                await asyncio.wait(self.tasks, timeout=10)

    async def _read(self, stream: str, stop: asyncio.Event) -> None:
        # First what this consumer read but never acked before it stopped. The consumer is this host and port,
        # so the same after a restart: the sender of those events is dead, and their claims are taken over at
        # once (a sent mark keeps an answer it got out from going twice). Then new events.
        pending_after: str | None = "0"
        grouped = False
        backoff = Backoff(base=0.2, cap=5.0)
        while not stop.is_set():
            events: list[tuple[str, ReplyEvent | None]] = []
            takeover = pending_after is not None
            async with self.outages.guard(REDIS, backoff=backoff, stop=stop):
                if not grouped:  # also after a Redis that lost its data came back empty
                    await self.queue.ensure_group(stream, DELIVERY_GROUP)
                    grouped = True
                try:
                    events = await self.queue.read_replies(
                        stream, self.consumer, 100, block_ms=1000, pending_after=pending_after
                    )
                except ResponseError as exc:
                    if "NOGROUP" not in str(exc):
                        raise
                    grouped = False
                    continue
                if pending_after is not None:
                    pending_after = events[-1][0] if events else None
                for entry_id, event in events:
                    if event is None:  # deleted from the stream meanwhile: nothing left to deliver
                        await self.acks.submit((stream, entry_id))
            for entry_id, event in events:
                if event is not None:
                    await self.slots.acquire()
                    self._spawn(self._handle(stream, entry_id, event, lease=0.0 if takeover else None))

    def _spawn(self, coroutine: object) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coroutine)  # type: ignore[arg-type]
        self.tasks.add(task)

        def done(finished: asyncio.Task[None]) -> None:
            self.tasks.discard(finished)
            self.slots.release()

        task.add_done_callback(done)

    async def _handle(
        self, stream: str | None, entry_id: str | None, event: ReplyEvent, lease: float | None = None
    ) -> None:
        # Events of one request are handled in order: a late preview must never follow the final answer.
        lock = self.locks.setdefault(event.request_id, asyncio.Lock())
        backoff = Backoff(base=0.2, cap=5.0)
        try:
            while True:
                try:
                    async with lock:
                        if event.kind is ReplyKind.PARTIAL:
                            await self._partial(event)
                        else:
                            await self._final(event, self.lease_seconds if lease is None else lease)
                    if stream is not None and entry_id is not None:
                        await self.acks.submit((stream, entry_id))
                    return
                except Exception as exc:
                    if self.outages.failed(exc) is None:
                        # Not acked: read again after a restart, or claimed by another delivery process.
                        log.exception("delivery of %s %s failed", event.kind, event.request_id)
                        return
                    if event.kind is ReplyKind.PARTIAL:
                        return  # a preview is worth nothing by the time the outage is over
                    # A final answer is tried again as soon as the outage allows, not after a lease; a claim this
                    # try took is its own to take back.
                    if event.request_id in self.claimed:
                        lease = 0.0
                    await backoff.sleep()
        finally:
            if event.kind.is_final:
                self.locks.pop(event.request_id, None)
                self.claimed.discard(event.request_id)

    async def _target(self, request_id: str) -> Target | None:
        if request_id not in self.targets:
            self.targets[request_id] = await self.pipeline.target(request_id)
            while len(self.targets) > 10_000:
                self.targets.popitem(last=False)
        return self.targets[request_id]

    async def _partial(self, event: ReplyEvent) -> None:
        target = await self._target(event.request_id)
        sender = self.senders.get(event.channel)
        if target is None or sender is None:
            return
        if (
            await sender.send_partial(target, render(event.text, target.latin))
            and event.request_id not in self.first_visible
        ):
            self.first_visible[event.request_id] = time.time()
            self.metrics.first_visible_text.labels(event.channel).observe(time.time() - target.received_at)

    async def _final(self, event: ReplyEvent, lease_seconds: float) -> None:
        target = await self.pipeline.claim_final(event.request_id, lease_seconds)
        self.targets.pop(event.request_id, None)
        if target is None:  # already answered (a regenerated reply, a redelivered event) or forgotten
            return
        self.claimed.add(event.request_id)
        sender = self.senders[target.channel]
        body = render(event.text, target.latin) if event.kind is ReplyKind.FINAL else ""
        kind = event.kind
        if not body.strip():
            if event.kind is ReplyKind.FINAL:
                log.warning(
                    "empty answer to %s from %s (finish %s, %d tokens): the user is told it failed",
                    event.request_id,
                    event.model or "the model",
                    event.finish_reason or "unknown",
                    event.completion_tokens,
                )
            notice = NOTICES.get(event.kind, T.FAILED)
            body = render(text(notice, target.language), target.latin and target.language == "tg")
            kind = ReplyKind.FAILED if kind is ReplyKind.FINAL else kind  # an empty answer is no answer
        else:
            target = dataclasses.replace(target, feedback=True)  # a model's answer: the user may rate it
        try:
            # A claim taken over from a sender killed after sending but before recording: record, don't resend.
            sent = await self.sent_marks.find(event.request_id, body) or await self._send(sender, target, body)
        except Undeliverable as exc:
            # Retrying cannot help: record the turn as ended so the conversation goes on, and move on.
            log.warning("reply %s undeliverable on %s: %s", event.request_id, target.channel, exc)
            self.metrics.replies_delivered.labels(target.channel, "undeliverable").inc()
            await self._record(event, body, None)
            return
        # The conversation's history keeps the answer as the model wrote it, so the next turn reads Cyrillic.
        answered = event.kind is ReplyKind.FINAL and bool(event.text.strip())
        recorded = event.text if target.latin and answered and sent.text == body else sent.text
        await self._record(event, recorded, ",".join(sent.external_ids) or None)
        now = time.time()
        channel = target.channel
        self.metrics.replies_delivered.labels(channel, KIND_LABELS[event.kind]).inc()
        self.metrics.end_to_end_latency.labels(channel).observe(now - target.received_at)
        if self.first_visible.pop(event.request_id, None) is None:
            self.metrics.first_visible_text.labels(channel).observe(now - target.received_at)
        if event.kind is ReplyKind.EXPIRED:
            self.metrics.deadline_expired.labels(channel).inc()
        elif event.kind is ReplyKind.FAILED:
            self.metrics.dead_letters.labels(channel).inc()
        model = target.model or event.model or "unknown"
        self.metrics.model_replies.labels(model, channel, KIND_LABELS[kind]).inc()
        if kind is ReplyKind.FINAL:
            self.metrics.model_latency.labels(model, channel).observe(now - target.received_at)

    async def _send(self, sender: ChannelSender, target: Target, body: str) -> Sent:
        sent = await sender.send_final(target, body)
        try:
            await self.sent_marks.mark(target.request_id, sent)
        except Exception as exc:  # the mark only narrows a crash window: never worth failing a delivery
            if self.outages.failed(exc) is None:
                raise
        return sent

    async def _record(self, event: ReplyEvent, delivered: str, external_id: str | None) -> None:
        """Store what was sent. It is on the user's screen already, so keep trying, through a database outage
        too, rather than let the request be claimed and sent again."""
        delay = 0.5
        failures = 0
        while True:
            try:
                await self.outages.through(DATABASE, lambda: self.pipeline.finish(event, delivered, external_id))
                return
            except Exception as exc:
                failures += 1
                if failures == 8:
                    raise
                log.warning("recording the answer to %s failed (%s); retrying", event.request_id, describe(exc))
                await asyncio.sleep(delay)
                delay *= 2

    async def _housekeeping(self, stop: asyncio.Event) -> None:
        backoff = Backoff(base=0.2, cap=5.0)
        while not stop.is_set():
            try:
                async with self.outages.guard(REDIS, DATABASE, backoff=backoff, stop=stop):
                    await self._sweep()
            except Exception:
                log.exception("housekeeping failed")
            await pause(1.0, stop)

    async def _sweep(self) -> None:
        # Overdue: no worker answered in time (all dead, or the queue too long). The worker's own notice
        # normally comes first; this one covers the case where no worker is alive to send it.
        for request_id in await self.pipeline.overdue(self.streams.keys(), grace_seconds=5.0):
            event = ReplyEvent(request_id=request_id, conversation_id=0, channel="", kind=ReplyKind.EXPIRED)
            await self.slots.acquire()
            self._spawn(self._handle(None, None, event))
        await self.pipeline.enqueue_stranded()
        await self.lost_turns.recover()
        for stream in self.streams:
            for entry_id, event in await self.queue.claim_stale_replies(
                stream, self.consumer, int(self.lease_seconds * 1000)
            ):
                await self.slots.acquire()
                self._spawn(self._handle(stream, entry_id, event))
        self.metrics.backlog.set(await self.queue.backlog())
        self.metrics.oldest_request_age.set(await self.queue.oldest_age_seconds())
        now = time.monotonic()
        if self.keys_pruned_at is None or now - self.keys_pruned_at >= KEY_PRUNING_INTERVAL_SECONDS:
            pruned = await self.pipeline.prune_keys()
            self.keys_pruned_at = now
            if pruned:
                log.info("forgot %d inbound keys older than %g days", pruned, self.settings.inbound_key_retention_days)
