"""Hands the outbox to the gateway: at once when it is up, with growing pauses while it is down.

A temporary failure (Kannel down, 503, a timeout) leaves the SMS queued with its next attempt later; only a
gateway's definite "never" fails it, or a day without the gateway taking it (an answer that late is no
answer). The delivery loop never waits for the gateway: its reply events are done once the outbox has them.

Redis and the database may go away under it: a pass that cannot reach the database waits with a capped
back-off, the outage is logged once (``soro.outage``), and sending goes on where it stopped. Once the gateway
has taken an SMS, recording that is retried through a short outage rather than left to the lease: a lease
that ran out would send the SMS a second time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta

from bot.channels.sms.gateway import GatewayError, OutgoingSms, RejectedByGateway, SmsGateway
from bot.channels.sms.outbox import SmsOutbox
from bot.limits import UserLimits
from bot.pipeline import Pipeline, redact
from bot.store.models import OutboundSms, utcnow
from soro.metrics import BotMetrics
from soro.outage import DATABASE, REDIS, Backoff, Outages, dependency_of, describe, outages
from tajik.sms import encoding_of

log = logging.getLogger(__name__)

CHANNEL = "sms"
SEGMENTS_SCOPE = "sms-segments"  # UserLimits counter: segments a number received today
GIVE_UP_AFTER = timedelta(days=1)
RETENTION = timedelta(days=7)


class SmsDispatcher:
    def __init__(
        self,
        outbox: SmsOutbox,
        gateway: SmsGateway,
        pipeline: Pipeline,
        limits: UserLimits,
        metrics: BotMetrics,
        cost_per_segment: float,
        retry_max_seconds: float,
        poll_seconds: float = 0.25,
        concurrency: int = 8,
        process_outages: Outages | None = None,
        outage_backoff: Backoff | None = None,
    ) -> None:
        self.outbox = outbox
        self.gateway = gateway
        self.pipeline = pipeline
        self.limits = limits
        self.metrics = metrics
        self.cost_per_segment = cost_per_segment
        self.retry_max_seconds = retry_max_seconds
        self.poll_seconds = poll_seconds
        self.slots = asyncio.Semaphore(concurrency)
        # Past the gateway's timeout, so a slow send is never taken by a second process meanwhile.
        self.lease_seconds = 60.0
        self.wake = asyncio.Event()
        self.outages = process_outages or outages(metrics.dependencies, "bot")
        self.backoff = outage_backoff or Backoff()
        self._next_purge = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                async with self.outages.guard(DATABASE, backoff=self.backoff, stop=stop):
                    if await self._pass():
                        continue
            except Exception as exc:  # a bug, not an outage: the type only (a message may quote the text)
                log.error("SMS outbox pass failed (%s); retrying", describe(exc))
            await self._sleep(stop)

    async def _pass(self) -> bool:
        """Send what is due; True when there was something (there may be more at once)."""
        rows = await self.outbox.claim_due(self.lease_seconds)
        if rows:
            results = await asyncio.gather(*(self._send(row) for row in rows), return_exceptions=True)
            outage: Exception | None = None
            for row, result in zip(rows, results, strict=True):
                if not isinstance(result, Exception):
                    continue
                if dependency_of(result) is not None:
                    outage = result
                else:  # its lease runs out, and it is tried again
                    log.error("SMS %d not sent (%s)", row.id, describe(result))
            if outage is not None:
                raise outage  # for the guard: one outage, one back-off
            return True
        if time.monotonic() >= self._next_purge:
            await self.outbox.purge(utcnow() - RETENTION)
            self._next_purge = time.monotonic() + 3600
        return False

    async def _sleep(self, stop: asyncio.Event) -> None:
        self.wake.clear()
        waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self.wake.wait())]
        await asyncio.wait(waiters, timeout=self.poll_seconds, return_when=asyncio.FIRST_COMPLETED)
        for waiter in waiters:
            waiter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiter

    async def _send(self, row: OutboundSms) -> None:
        async with self.slots:
            who = redact(row.address)
            if not row.notice and await self.pipeline.opted_out(CHANNEL, row.address):
                log.info("SMS %d to %s not sent: the number opted out", row.id, who)
                await self.outbox.failed(row, "opted out")
                return
            try:
                await self.gateway.submit(OutgoingSms(row.id, row.address, row.text, encoding_of(row.text)))
            except GatewayError as exc:
                self.metrics.sms_gateway_errors.labels(exc.kind).inc()
                if isinstance(exc, RejectedByGateway) or utcnow() - row.created_at > GIVE_UP_AFTER:
                    log.error("SMS %d to %s failed for good: %s", row.id, who, exc)
                    await self.outbox.failed(row, str(exc))
                    return
                delay = self._backoff(row.attempts)
                log.warning("SMS %d to %s not taken (%s); next try in %.1fs", row.id, who, exc, delay)
                await self.outbox.retry_later(row, str(exc), delay)
                return
            await self._through_outages(lambda: self.outbox.accepted(row))
            self.metrics.sms_segments_sent.inc(row.segments)
            if not row.notice:
                self.metrics.sms_segments_per_answer.observe(row.segments)
            try:
                today = await self.limits.add_usage(SEGMENTS_SCOPE, row.address, row.segments)
            except Exception as exc:  # the SMS is sent: only today's count misses it while Redis is away
                if self.outages.failed(exc) is None:
                    raise
                log.info("SMS %d to %s: %d segment(s)", row.id, who, row.segments)
                return
            self.outages.ok(REDIS)
            log.info(
                "SMS %d to %s: %d segment(s), %d today (≈%.2f)",
                row.id,
                who,
                row.segments,
                today,
                today * self.cost_per_segment,
            )

    async def _through_outages(self, store: Callable[[], Awaitable[None]]) -> None:
        """``store`` retried through a database outage for most of the lease (then the lease decides)."""
        await self.outages.through(DATABASE, store, time.monotonic() + self.lease_seconds * 0.8)

    def _backoff(self, attempts: int) -> float:
        """0.5 s, 1 s, 2 s, … up to the configured cap, with jitter so many SMS do not retry in step."""
        base: float = min(self.retry_max_seconds, 0.5 * 2**attempts)
        return base * random.uniform(0.8, 1.0)
