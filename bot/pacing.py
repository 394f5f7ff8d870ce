"""Outbound pacing: token buckets for a whole bot (≈30 messages/s) and for each chat (≈1 message/s)."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict


class TokenBucket:
    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.updated = time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def try_take(self) -> bool:
        self._refill()
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False

    def wait_seconds(self) -> float:
        self._refill()
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate

    async def take(self) -> None:
        while not self.try_take():  # noqa: ASYNC110 - waiting for time to pass, not for an event
            await asyncio.sleep(self.wait_seconds())


class OutboundLimiter:
    """One global bucket and one per chat. Finals wait for their turn; previews are skipped when none is free."""

    def __init__(self, global_rate: float, chat_rate: float, chat_burst: float = 2, max_chats: int = 10_000) -> None:
        self.global_bucket = TokenBucket(global_rate, global_rate)
        self.chat_rate = chat_rate
        self.chat_burst = chat_burst
        self.max_chats = max_chats
        self.chats: OrderedDict[int | str, TokenBucket] = OrderedDict()

    def _chat(self, chat: int | str) -> TokenBucket:
        bucket = self.chats.get(chat)
        if bucket is None:
            bucket = self.chats[chat] = TokenBucket(self.chat_rate, self.chat_burst)
            if len(self.chats) > self.max_chats:
                self.chats.popitem(last=False)
        else:
            self.chats.move_to_end(chat)
        return bucket

    async def acquire(self, chat: int | str | None) -> None:
        if chat is not None:
            await self._chat(chat).take()
        await self.global_bucket.take()

    def try_acquire(self, chat: int | str) -> bool:
        bucket = self._chat(chat)
        if bucket.wait_seconds() > 0 or self.global_bucket.wait_seconds() > 0:
            return False
        return bucket.try_take() and self.global_bucket.try_take()
