"""What the delivery loop needs from a channel."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from bot.pipeline import Target


@dataclass(frozen=True)
class Sent:
    """What a final send put on the wire: the text as delivered (split, trimmed) and the gateway's ids."""

    text: str
    external_ids: list[str] = field(default_factory=list)


class Undeliverable(Exception):
    """The channel will never take this message (the user blocked the bot, the number does not exist)."""


class ChannelSender(Protocol):
    channel: str

    async def send_partial(self, target: Target, text: str) -> bool:
        """Show the answer so far, if the channel can and the link allows; True when something was shown."""
        ...

    async def send_final(self, target: Target, text: str) -> Sent:
        """Deliver the final text. Retries what can be retried; raises ``Undeliverable`` when it never can be."""
        ...
