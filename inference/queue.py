"""The queue contract between the bot and the workers: Redis Streams, their groups and their events.

The bot appends a ``TurnRequest`` (carrying the whole prompt context) to the requests stream. Workers read it
through one consumer group, write ``ReplyEvent``s to the reply stream the request names, and ack the request
only after its final event is written. Entries of a dead worker stay pending and are claimed by another
worker after the visibility timeout; after ``max_attempts`` a request goes to the dead-letter stream.

This module is the only thing the bot imports from ``inference``.
"""

from __future__ import annotations

import enum
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ResponseError

WORKERS_GROUP = "workers"
DELIVERY_GROUP = "delivery"
REPLIES_MAXLEN = 100_000


@dataclass(frozen=True)
class StreamNames:
    prefix: str = "soro"

    @property
    def requests(self) -> str:
        return f"{self.prefix}:requests"

    @property
    def dead_letters(self) -> str:
        return f"{self.prefix}:dead"

    def replies(self, channel: str) -> str:
        return f"{self.prefix}:replies:{channel}"


@dataclass(frozen=True)
class ChatMessage:
    role: str  # "system" | "user" | "assistant"
    content: str


@dataclass(frozen=True)
class TurnRequest:
    request_id: str
    conversation_id: int
    channel: str
    reply_stream: str
    messages: list[ChatMessage]
    deadline: float
    max_tokens: int
    created_at: float = field(default_factory=time.time)
    char_budget: int | None = None  # SMS: the answer must fit this many characters
    model: str | None = None
    stream_partials: bool = True  # the channel shows answers while they are generated

    def to_json(self) -> str:
        # Not dataclasses.asdict: its deep copy of every field costs more than the JSON itself.
        data = {**vars(self), "messages": [vars(m) for m in self.messages]}
        return json.dumps(data, ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: str | bytes) -> TurnRequest:
        data = json.loads(raw)
        data["messages"] = [ChatMessage(**m) for m in data["messages"]]
        return cls(**data)

    def expired(self, now: float | None = None) -> bool:
        return (now if now is not None else time.time()) >= self.deadline


class ReplyKind(enum.StrEnum):
    PARTIAL = "partial"  # the text so far, for a streamed preview
    FINAL = "final"  # the whole answer
    EXPIRED = "expired"  # the deadline passed before an answer was ready
    FAILED = "failed"  # the request went to the dead-letter stream

    @property
    def is_final(self) -> bool:
        return self is not ReplyKind.PARTIAL


@dataclass(frozen=True)
class ReplyEvent:
    request_id: str
    conversation_id: int
    channel: str
    kind: ReplyKind
    text: str = ""
    seq: int = 0
    model: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    queue_wait_seconds: float = 0.0
    first_token_seconds: float = 0.0
    generation_seconds: float = 0.0
    finish_reason: str = ""
    created_at: float = field(default_factory=time.time)

    def to_json(self) -> str:
        return json.dumps(vars(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: str | bytes) -> ReplyEvent:
        data = json.loads(raw)
        data["kind"] = ReplyKind(data["kind"])
        return cls(**data)


@dataclass(frozen=True)
class Delivery:
    """A request read from the stream, with how many times it has been handed out."""

    entry_id: str
    request: TurnRequest
    attempt: int = 1


def redis_client(url: str) -> Redis:
    """The Redis client of a process. After a Redis restart every pooled connection is dead: one retry on a
    fresh connection lets a call go through at once instead of failing once per stale connection (a call
    repeated that way can at worst add an entry twice, which delivery deduplicates)."""
    return Redis.from_url(url, retry=Retry(NoBackoff(), 1))


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


# KEYS: the reply stream, the request stream; ARGV: the event, the replies' length cap, the group, the entry.
_REPLY_AND_ACK = """
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'data', ARGV[1])
redis.call('XACK', KEYS[2], ARGV[3], ARGV[4])
redis.call('XDEL', KEYS[2], ARGV[4])
"""


async def _add_reply(client: Redis | Pipeline, event: ReplyEvent, stream: str) -> None:
    """XADD of one reply event, at once on a client, or queued on a pipeline."""
    await client.xadd(stream, {"data": event.to_json()}, maxlen=REPLIES_MAXLEN, approximate=True)


class RequestQueue:
    """Typed access to the streams; one instance per process, around one Redis connection pool."""

    def __init__(self, redis: Redis, names: StreamNames | None = None) -> None:
        self.redis = redis
        self.names = names or StreamNames()
        self._reply_and_ack_script = redis.register_script(_REPLY_AND_ACK)  # by its hash; loaded after a restart

    async def ensure_group(self, stream: str, group: str) -> None:
        try:
            await self.redis.xgroup_create(stream, group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    # Requests: bot side

    async def enqueue(self, request: TurnRequest) -> str:
        entry_id = await self.redis.xadd(self.names.requests, {"data": request.to_json()})
        return _s(entry_id)

    async def enqueue_many(self, requests: Sequence[TurnRequest]) -> list[str]:
        """``enqueue`` for several turns in one round trip (in order)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for request in requests:
                pipe.xadd(self.names.requests, {"data": request.to_json()})
            return [_s(entry_id) for entry_id in await pipe.execute()]

    async def server_run(self) -> str:
        """The Redis server's run id: a new one after every restart of the server."""
        info: Any = await self.redis.info("server")
        return str(info["run_id"])

    async def enqueued_request_ids(self, page: int = 500) -> set[str]:
        """The request ids of every turn in the requests stream (waiting, or held by a worker)."""
        found: set[str] = set()
        start = "-"
        while True:
            entries: Any = await self.redis.xrange(self.names.requests, min=start, max="+", count=page)
            for _entry_id, fields in entries:
                found.add(json.loads(fields[b"data"])["request_id"])
            if len(entries) < page:
                return found
            start = "(" + _s(entries[-1][0])

    async def backlog(self) -> int:
        """Requests waiting for or held by a worker: the group's lag plus its pending entries."""
        try:
            groups = await self.redis.xinfo_groups(self.names.requests)
        except ResponseError:
            return 0
        for group in groups:
            if _s(group["name"]) == WORKERS_GROUP:
                lag = group.get("lag")
                if lag is None:  # unknown after deletions: count what follows the last delivered id
                    after = f"({_s(group['last-delivered-id'])}"
                    lag = len(await self.redis.xrange(self.names.requests, after) or [])
                return int(lag) + int(group["pending"])
        return int(await self.redis.xlen(self.names.requests))

    async def oldest_age_seconds(self, now: float | None = None) -> float:
        """Age of the oldest request not yet acked (0 when none waits)."""
        entries = await self.redis.xrange(self.names.requests, "-", "+", count=1)
        if not entries:
            return 0.0
        millis = int(_s(entries[0][0]).split("-")[0])
        return max(0.0, (now if now is not None else time.time()) - millis / 1000)

    # Requests: worker side

    async def read(self, consumer: str, count: int, block_ms: int) -> list[Delivery]:
        response: Any = await self.redis.xreadgroup(
            WORKERS_GROUP, consumer, {self.names.requests: ">"}, count=count, block=block_ms
        )
        out = []
        for _stream, entries in response or []:
            for entry_id, fields in entries:
                out.append(Delivery(_s(entry_id), TurnRequest.from_json(fields[b"data"])))
        return out

    async def claim_stale(self, consumer: str, min_idle_ms: int, count: int) -> list[Delivery]:
        """Take over requests whose worker went silent for ``min_idle_ms``, with their attempt numbers."""
        result: Any = await self.redis.xautoclaim(
            self.names.requests, WORKERS_GROUP, consumer, min_idle_ms, start_id="0-0", count=count
        )
        claimed = [(e, f) for e, f in result[1] if f]  # entries deleted meanwhile come back empty
        deleted = list(result[2]) if len(result) > 2 else []
        if deleted:  # pending entries whose data was deleted can never be served
            await self.redis.xack(self.names.requests, WORKERS_GROUP, *deleted)
        out = []
        for entry_id, fields in claimed:
            pending = await self.redis.xpending_range(
                self.names.requests, WORKERS_GROUP, min=entry_id, max=entry_id, count=1
            )
            attempt = int(pending[0]["times_delivered"]) if pending else 1
            out.append(Delivery(_s(entry_id), TurnRequest.from_json(fields[b"data"]), attempt))
        return out

    async def keep_alive(self, consumer: str, entry_ids: Sequence[str]) -> None:
        """Reset the idle time of requests still being worked on, so no other worker claims them."""
        if entry_ids:
            await self.redis.xclaim(self.names.requests, WORKERS_GROUP, consumer, 0, list(entry_ids), justid=True)

    async def reply_and_ack(self, event: ReplyEvent, stream: str, entry_id: str) -> None:
        """A request's last reply event and its ack in one round trip. A script, not MULTI: a transaction runs
        the commands after one that fails, and a request must never be acked without its reply."""
        await self._last_reply(self.redis, event, stream, entry_id)

    async def _last_reply(self, client: Redis | Pipeline, event: ReplyEvent, stream: str, entry_id: str) -> None:
        await self._reply_and_ack_script(
            keys=[stream, self.names.requests],
            args=[event.to_json(), REPLIES_MAXLEN, WORKERS_GROUP, entry_id],
            client=client,
        )

    async def dead_letter(self, delivery: Delivery, reason: str) -> None:
        await self.redis.xadd(
            self.names.dead_letters,
            {"data": delivery.request.to_json(), "reason": reason, "attempts": str(delivery.attempt)},
        )

    # Replies

    async def publish(self, event: ReplyEvent, stream: str) -> None:
        await _add_reply(self.redis, event, stream)

    async def publish_many(self, replies: Sequence[tuple[ReplyEvent, str, str | None]]) -> list[BaseException | None]:
        """Reply events in one round trip (two when some are a request's last), each (event, its stream, the
        request entry acked with it when it is the request's last); each succeeds or fails on its own."""
        if len(replies) == 1:
            [(event, stream, entry_id)] = replies
            await (self.publish(event, stream) if entry_id is None else self.reply_and_ack(event, stream, entry_id))
            return [None]
        async with self.redis.pipeline(transaction=False) as pipe:
            for event, stream, entry_id in replies:
                if entry_id is None:
                    await _add_reply(pipe, event, stream)
                else:
                    await self._last_reply(pipe, event, stream, entry_id)
            results = await pipe.execute(raise_on_error=False)
        return [result if isinstance(result, BaseException) else None for result in results]

    async def read_replies(
        self, stream: str, consumer: str, count: int, block_ms: int, pending_after: str | None = None
    ) -> list[tuple[str, ReplyEvent | None]]:
        """New reply events for ``consumer``; with ``pending_after``, those it got but never acked, after that
        entry id ("0": from the first). An entry deleted meanwhile comes back as (its id, None)."""
        start = ">" if pending_after is None else pending_after
        response: Any = await self.redis.xreadgroup(
            DELIVERY_GROUP, consumer, {stream: start}, count=count, block=block_ms
        )
        out: list[tuple[str, ReplyEvent | None]] = []
        for _stream, entries in response or []:
            for entry_id, fields in entries:
                out.append((_s(entry_id), ReplyEvent.from_json(fields[b"data"]) if fields else None))
        return out

    async def claim_stale_replies(self, stream: str, consumer: str, min_idle_ms: int) -> list[tuple[str, ReplyEvent]]:
        result = await self.redis.xautoclaim(stream, DELIVERY_GROUP, consumer, min_idle_ms, start_id="0-0", count=100)
        return [(_s(e), ReplyEvent.from_json(f[b"data"])) for e, f in result[1] if f]

    async def ack_replies(self, entries: Sequence[tuple[str, str]]) -> list[BaseException | None]:
        """Ack and remove reply events, each (its stream, its entry id), all in one round trip."""
        by_stream: dict[str, list[str]] = {}
        for stream, entry_id in entries:
            by_stream.setdefault(stream, []).append(entry_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            for stream, entry_ids in by_stream.items():
                pipe.xack(stream, DELIVERY_GROUP, *entry_ids)
                pipe.xdel(stream, *entry_ids)
            await pipe.execute()
        return [None] * len(entries)
