"""An incoming SMS: keywords, opt-out, the daily segment quota, then the pipeline like any other channel.

Notices cost money too, so those a repeat would not help (quota, rate limit) go out once a day per number,
and an opted-out number gets nothing at all until it sends a start keyword. While Redis or the database is
away, an MO is refused with ``InboxUnavailable`` (the gateway asks again later) and the outage is logged once.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator

from bot.channels.sms.dispatch import CHANNEL, SEGMENTS_SCOPE
from bot.channels.sms.gateway import DeliveryReport, InboxUnavailable, MobileOriginated
from bot.channels.sms.keywords import Keyword, match_keyword
from bot.channels.sms.numbers import to_e164
from bot.channels.sms.outbox import SmsOutbox
from bot.limits import UserLimits
from bot.pipeline import Inbound, Outcome, Pipeline, redact
from bot.store.models import Vote
from bot.texts import T, text
from soro.metrics import BotMetrics
from soro.outage import DATABASE, REDIS, Outages, outages
from tajik.sms import fit_to_budget, segment_count

log = logging.getLogger(__name__)

ONCE_A_DAY = frozenset({"quota", "rate_limited", "sms_quota"})


class Inbox:
    def __init__(
        self,
        pipeline: Pipeline,
        outbox: SmsOutbox,
        limits: UserLimits,
        metrics: BotMetrics,
        segment_budget: int,
        daily_segments: int,
        default_country_code: str,
        wake: Callable[[], None],
        process_outages: Outages | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.outbox = outbox
        self.limits = limits
        self.metrics = metrics
        self.segment_budget = segment_budget
        self.daily_segments = daily_segments
        self.default_country_code = default_country_code
        self.wake = wake
        self.outages = process_outages or outages(metrics.dependencies, "bot")

    async def receive(self, message: MobileOriginated) -> None:
        number = to_e164(message.sender, self.default_country_code)
        if number is None:
            log.info("SMS %s from a sender that is no phone number ignored", message.gateway_id)
            return
        with self._outage_means_unavailable():
            await self._receive(message, number)
        self.outages.ok(DATABASE)  # every path past this point stored or read something

    async def _receive(self, message: MobileOriginated, number: str) -> None:
        keyword = match_keyword(message.text) if message.text else None
        if keyword is not None and await self._keyword(keyword, number, message.gateway_id):
            return
        if await self.pipeline.opted_out(CHANNEL, number):
            if await self._first_time(message.gateway_id):
                self.metrics.messages_rejected.labels(CHANNEL, "opted_out").inc()
            return
        if message.text is None:
            if await self._first_time(message.gateway_id):
                log.warning("SMS %s from %s could not be decoded", message.gateway_id, redact(number))
                await self._reject(number, "unreadable", T.SMS_UNREADABLE)
            return
        used = await self.limits.usage(SEGMENTS_SCOPE, number)
        self.outages.ok(REDIS)
        if used >= self.daily_segments:
            if await self._first_time(message.gateway_id):
                log.info("%s is over its daily SMS quota", redact(number))
                await self._reject(number, "sms_quota", T.SMS_QUOTA)
            return
        accepted = await self.pipeline.accept(
            Inbound(CHANNEL, number, message.text, dedup_key=message.gateway_id, received_at=message.received_at)
        )
        if accepted.outcome is Outcome.REJECTED and accepted.notice is not None:
            await self._notify(number, accepted.notice, accepted.reason)

    async def report(self, report: DeliveryReport) -> None:
        with self._outage_means_unavailable():
            known = await self.outbox.report(report)
        self.outages.ok(DATABASE)
        if known:
            self.metrics.sms_dlr.labels(report.outcome).inc()
        else:
            log.info("delivery report for unknown SMS %d ignored", report.sms_id)

    @contextlib.contextmanager
    def _outage_means_unavailable(self) -> Iterator[None]:
        """An error that shows Redis or the database away becomes ``InboxUnavailable``, recorded as an outage."""
        try:
            yield
        except Exception as exc:
            dependency = self.outages.failed(exc)
            if dependency is None:
                raise
            raise InboxUnavailable(dependency) from None

    async def _keyword(self, keyword: Keyword, number: str, gateway_id: str) -> bool:
        """Act on a keyword; False when it is an ordinary message after all (a rating with no answer before it)."""
        if keyword.rates:
            # Recorded before the gateway id: a retried SMS rates again with the same vote, which changes nothing.
            vote = Vote.UP if keyword is Keyword.GOOD else Vote.DOWN
            rated = await self.pipeline.feedback.rate_last(CHANNEL, number, vote)
            if rated is None:
                return False
            if await self._first_time(gateway_id):
                await self._notify(number, text(T.FEEDBACK_THANKS, rated.language))
            return True
        if not await self._first_time(gateway_id):
            return True
        language = await self.pipeline.language(CHANNEL, number)
        if keyword is Keyword.FORGET:
            await self.pipeline.forget(CHANNEL, number)
            log.info("%s asked to be forgotten", redact(number))
            await self._notify(number, text(T.SMS_FORGOTTEN, language))
            return True
        opted_out = await self.pipeline.opted_out(CHANNEL, number)
        if keyword is Keyword.STOP:
            if opted_out:  # one confirmation, and nothing more
                return True
            await self.pipeline.set_opted_out(CHANNEL, number, True)
            log.info("%s opted out of SMS", redact(number))
            await self._notify(number, text(T.SMS_STOPPED, language))
            return True
        if opted_out:
            await self.pipeline.set_opted_out(CHANNEL, number, False)
            log.info("%s opted in to SMS again", redact(number))
        await self.pipeline.new_conversation(CHANNEL, number)
        await self._notify(number, text(T.SMS_WELCOME_BACK if opted_out else T.NEW_CONVERSATION, language))
        return True

    async def _first_time(self, gateway_id: str) -> bool:
        """Record an SMS the pipeline does not see; False when the gateway sent it before (a retry)."""
        fresh = await self.pipeline.first_time(CHANNEL, gateway_id)
        if fresh:
            self.metrics.messages_received.labels(CHANNEL).inc()
        return fresh

    async def _reject(self, number: str, reason: str, notice: T) -> None:
        self.metrics.messages_rejected.labels(CHANNEL, reason).inc()
        language = await self.pipeline.language(CHANNEL, number)
        await self._notify(number, text(notice, language), reason)

    async def _notify(self, number: str, notice: str, reason: str | None = None) -> None:
        if reason in ONCE_A_DAY and not await self.limits.first_today(f"sms-notice-{reason}", number):
            return
        body, _ = fit_to_budget(notice, self.segment_budget)
        await self.outbox.add(number, body, segment_count(body), notice=True)
        self.wake()
