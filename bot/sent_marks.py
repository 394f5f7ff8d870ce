"""What the bot has put on a user's screen, noted in Redis the moment the channel took it.

Sending a final answer and recording it in SQL cannot be one step: a bot killed between the two leaves a
claim that another sender takes over after its lease, and the Bot API has no idempotency key, so the answer
would go out twice. The gap between the channel's "sent" and one Redis ``SET`` is a round trip on loopback,
not the SQL transaction that records the answer: a sender that takes a claim over looks here first and
records what was sent instead of sending it again.
"""

from __future__ import annotations

import json

from redis.asyncio import Redis

from bot.channels.base import Sent

# Long enough for any lease to expire and the claim to be taken over; a mark holds only ids (tens of bytes).
KEEP_SECONDS = 3600


class SentMarks:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix

    def _key(self, request_id: str) -> str:
        return f"{self.prefix}:sent:{request_id}"

    async def mark(self, request_id: str, sent: Sent) -> None:
        await self.redis.set(self._key(request_id), json.dumps(sent.external_ids), ex=KEEP_SECONDS)

    async def find(self, request_id: str, text: str) -> Sent | None:
        """What was sent for ``request_id`` (as ``text``, the text it was sent for), or None."""
        raw = await self.redis.get(self._key(request_id))
        return Sent(text, [str(i) for i in json.loads(raw)]) if raw is not None else None
