"""Per-user rate limits and daily quotas, counted in Redis so every bot replica sees the same numbers."""

from __future__ import annotations

import enum
import time
from collections.abc import Sequence
from dataclasses import dataclass

from redis.asyncio import Redis


class Verdict(enum.StrEnum):
    OK = "ok"
    RATE_LIMITED = "rate_limited"
    QUOTA = "quota"


@dataclass(frozen=True)
class Window:
    seconds: int
    limit: int


class UserLimits:
    """Fixed-window counters: ``per_minute`` messages a minute and ``per_day`` units (messages, SMS segments) a day."""

    def __init__(self, redis: Redis, prefix: str, per_minute: int, per_day: int) -> None:
        self.redis = redis
        self.prefix = prefix
        self.minute = Window(60, per_minute)
        self.day = Window(86_400, per_day)

    def _key(self, scope: str, who: str, window: Window, now: float) -> str:
        return f"{self.prefix}:limit:{scope}:{who}:{int(now // window.seconds)}"

    async def check_message(self, who: str, now: float | None = None) -> Verdict:
        """Count one message from ``who`` and say whether it may become a model turn."""
        return (await self.check_messages([who], now))[0]

    async def check_messages(self, whos: Sequence[str], now: float | None = None) -> list[Verdict]:
        """``check_message`` for several messages at once, in one round trip."""
        if not whos:
            return []
        now = now if now is not None else time.time()
        async with self.redis.pipeline(transaction=True) as pipe:
            for who in whos:
                minute_key = self._key("msg", who, self.minute, now)
                day_key = self._key("msg", who, self.day, now)
                pipe.incr(minute_key)
                pipe.expire(minute_key, self.minute.seconds)
                pipe.incr(day_key)
                pipe.expire(day_key, self.day.seconds)
            counts = await pipe.execute()
        return [self._verdict(int(counts[4 * i]), int(counts[4 * i + 2])) for i in range(len(whos))]

    def _verdict(self, per_minute: int, per_day: int) -> Verdict:
        if per_day > self.day.limit:
            return Verdict.QUOTA
        if per_minute > self.minute.limit:
            return Verdict.RATE_LIMITED
        return Verdict.OK

    async def add_usage(self, scope: str, who: str, amount: int, now: float | None = None) -> int:
        """Add ``amount`` to today's ``scope`` counter of ``who`` (e.g. SMS segments); returns the new total."""
        now = now if now is not None else time.time()
        key = self._key(scope, who, self.day, now)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incrby(key, amount)
            pipe.expire(key, self.day.seconds)
            total, _ = await pipe.execute()
        return int(total)

    async def usage(self, scope: str, who: str, now: float | None = None) -> int:
        now = now if now is not None else time.time()
        value = await self.redis.get(self._key(scope, who, self.day, now))
        return int(value or 0)

    async def first_today(self, scope: str, who: str, now: float | None = None) -> bool:
        """True once a day per ``scope`` and ``who``: for notices that must not repeat (over-quota SMS)."""
        now = now if now is not None else time.time()
        return bool(await self.redis.set(self._key(scope, who, self.day, now), 1, nx=True, ex=self.day.seconds))
