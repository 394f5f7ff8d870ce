"""The SMS side of the delivery loop: fit the answer to the segment budget and put it in the outbox."""

from __future__ import annotations

from collections.abc import Callable

from bot.channels.base import Sent
from bot.channels.sms.dispatch import CHANNEL
from bot.channels.sms.outbox import SmsOutbox
from bot.pipeline import Target
from soro.metrics import BotMetrics
from tajik.sms import fit_to_budget, segment_count


class SmsSender:
    channel = CHANNEL

    def __init__(self, outbox: SmsOutbox, metrics: BotMetrics, segment_budget: int, wake: Callable[[], None]) -> None:
        self.outbox = outbox
        self.metrics = metrics
        self.segment_budget = segment_budget
        self.wake = wake

    async def send_partial(self, target: Target, text: str) -> bool:
        return False  # an SMS cannot be edited: every preview would be paid for

    async def send_final(self, target: Target, text: str) -> Sent:
        """Store the answer for the gateway; the same request stored twice (a redelivered event) is sent once."""
        body, trimmed = fit_to_budget(text, self.segment_budget)
        row, new = await self.outbox.add(target.address, body, segment_count(body), request_id=target.request_id)
        if new and trimmed:
            self.metrics.sms_answers_trimmed.inc()
        self.wake()
        return Sent(row.text, [str(row.id)])
