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


# Each message's minute and day counters, counted up and given their lifetime when new, in one script: one
# command and one reply for a whole batch of messages, where a MULTI of INCR and EXPIRE pairs costs four
# commands and eight replies a message.
_COUNT = """
local counts = {}
for i = 1, #KEYS, 2 do
    local minute = redis.call('INCR', KEYS[i])
    if minute == 1 then redis.call('EXPIRE', KEYS[i], ARGV[1]) end
    local day = redis.call('INCR', KEYS[i + 1])
    if day == 1 then redis.call('EXPIRE', KEYS[i + 1], ARGV[2]) end
    counts[#counts + 1] = minute
    counts[#counts + 1] = day
end
return counts
"""


class UserLimits:
    """Fixed-window counters: ``per_minute`` messages a minute and ``per_day`` units (messages, SMS segments) a day."""

    def __init__(self, redis: Redis, prefix: str, per_minute: int, per_day: int) -> None:
        self.redis = redis
        self.prefix = prefix
        self.minute = Window(60, per_minute)
        self.day = Window(86_400, per_day)
        self._count = redis.register_script(_COUNT)  # by its hash; loaded again after a Redis restart

    def _key(self, scope: str, who: str, window: Window, now: float) -> str:
        return f"{self.prefix}:limit:{scope}:{who}:{int(now // window.seconds)}"

    async def check_message(self, who: str, now: float | None = None) -> Verdict:
        """Count one message from ``who`` and say whether it may become a model turn."""
        return (await self.check_messages([who], now))[0]

    async def check_messages(self, whos: Sequence[str], now: float | None = None) -> list[Verdict]:
        """``check_message`` for several messages at once: one command, one reply."""
        if not whos:
            return []
        now = now if now is not None else time.time()
        keys = [
            key
            for who in whos
            for key in (self._key("msg", who, self.minute, now), self._key("msg", who, self.day, now))
        ]
        counts = await self._count(keys=keys, args=[self.minute.seconds, self.day.seconds])
        return [self._verdict(int(counts[2 * i]), int(counts[2 * i + 1])) for i in range(len(whos))]

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
