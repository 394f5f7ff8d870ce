"""Turns Redis lost in a restart, put back into the stream.

A Redis whose host lost power comes back from its AOF without up to its last second or two of writes (a
``kill -9`` of the process alone loses only writes a busy disk made it hold back); one without persistence, or
on a new volume, comes back with nothing. SQL still holds those turns as QUEUED, no worker will ever read them,
and their users would wait for the deadline's "not in time" notice. After every restart of the Redis server, one
bot process compares the two and enqueues again what the stream lacks. A turn enqueued twice that way (it was
acked in the same instant) costs a second generation, never a second answer: the final is sent by whoever
claims it in SQL.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.store import queries
from bot.store.models import utcnow
from inference.queue import RequestQueue, TurnRequest
from soro.metrics import BotMetrics

log = logging.getLogger(__name__)

# Turns marked QUEUED this recently may have reached the stream after it was read: they are left alone.
MARK_MARGIN_SECONDS = 2.0
MOST_AT_ONCE = 10_000  # far above the backlog limit: QUEUED turns are in the backlog
LOCK_SECONDS = 60


class LostTurns:
    def __init__(self, engine: AsyncEngine, queue: RequestQueue, metrics: BotMetrics) -> None:
        self.engine = engine
        self.queue = queue
        self.metrics = metrics
        self.seen_key = f"{queue.names.prefix}:redis-run"  # the run of the server last compared with SQL
        self.checked: str | None = None  # the run this process knows was compared

    async def recover(self) -> int:
        """Enqueue again the turns a restarted Redis lost (one round trip when it has not restarted)."""
        run = await self.queue.server_run()
        if run == self.checked:
            return 0
        redis = self.queue.redis
        seen = await redis.get(self.seen_key)
        if seen == run.encode():
            self.checked = run
            return 0
        # Of several bot processes, one compares this run; if it dies meanwhile, another does once the lock
        # expires. A lock of an earlier run (restored from the AOF) does not stand in the way of this one.
        lock = f"{self.seen_key}:lock:{run}"
        if not await redis.set(lock, "1", nx=True, ex=LOCK_SECONDS):
            return 0
        started, read_from = time.time(), utcnow()
        in_stream = await self.queue.enqueued_request_ids()
        async with self.engine.connect() as connection:
            queued = await queries.queued_turns(
                connection, read_from - timedelta(seconds=MARK_MARGIN_SECONDS), utcnow(), MOST_AT_ONCE
            )
        lost = [TurnRequest.from_json(payload) for request_id, payload in queued if request_id not in in_stream]
        if lost:
            await self.queue.enqueue_many(lost)
        await redis.set(self.seen_key, run)
        await redis.delete(lock)
        self.checked = run
        self.metrics.turns_requeued.inc(len(lost))
        if lost or seen is not None:  # not the first start of a new deployment
            log.warning(
                "redis restarted: %d of %d queued turns were missing from the stream and are enqueued again (%.2f s)",
                len(lost),
                len(queued),
                time.time() - started,
            )
        return len(lost)
