"""The SMS outbox in SQL: every answer and notice is stored before the gateway sees it, and its fate after.

Rows are claimed with a lease (``next_attempt_at`` moved ahead in one conditional UPDATE), so several bot
processes can share the outbox and a process that dies mid-send leaves the row to be sent again, not lost.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.sms.gateway import DeliveryReport
from bot.store.models import DeliveryState, Message, OutboundSms, Request, RequestState, utcnow

# Later states never give way to earlier ones: reports arrive out of order, and retried.
_RANK = {DeliveryState.QUEUED: 0, DeliveryState.ACCEPTED: 1, DeliveryState.DELIVERED: 2, DeliveryState.FAILED: 2}
_OPEN_REQUEST = (RequestState.PENDING_ENQUEUE, RequestState.QUEUED, RequestState.DELIVERING)
FINISH_WAIT = timedelta(minutes=2)


class SmsOutbox:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def add(
        self, address: str, text: str, segments: int, request_id: str | None = None, notice: bool = False
    ) -> tuple[OutboundSms, bool]:
        """Store an SMS to send; returns it and whether it is new (an answer is stored once per request)."""
        if request_id is not None:
            existing = await self.answer_of(request_id)
            if existing is not None:
                return existing, False
        row = OutboundSms(address=address, text=text, segments=segments, request_id=request_id, notice=notice)
        try:
            async with self.sessions() as session, session.begin():
                session.add(row)
        except IntegrityError:  # the same answer stored concurrently by another delivery process
            assert request_id is not None
            existing = await self.answer_of(request_id)
            assert existing is not None
            return existing, False
        return row, True

    async def answer_of(self, request_id: str) -> OutboundSms | None:
        async with self.sessions() as session:
            return (await session.scalars(select(OutboundSms).where(OutboundSms.request_id == request_id))).first()

    async def claim_due(self, lease_seconds: float, limit: int = 50) -> list[OutboundSms]:
        """Queued SMS whose time has come, each taken for ``lease_seconds``.

        An answer waits until its turn is finished: then its ``Message`` exists for the reports to update. A turn
        still open after ``FINISH_WAIT`` (its delivery process died between the outbox and the finish) holds
        its answer back no longer.
        """
        now = utcnow()
        async with self.sessions() as session:
            due = (
                await session.scalars(
                    select(OutboundSms)
                    .outerjoin(Request, Request.id == OutboundSms.request_id)
                    .where(
                        OutboundSms.state == DeliveryState.QUEUED,
                        OutboundSms.next_attempt_at <= now,
                        or_(
                            Request.id.is_(None),
                            Request.state.not_in(_OPEN_REQUEST),
                            OutboundSms.created_at < now - FINISH_WAIT,
                        ),
                    )
                    .order_by(OutboundSms.next_attempt_at)
                    .limit(limit)
                )
            ).all()
        claimed = []
        lease_end = now + timedelta(seconds=lease_seconds)
        for row in due:
            async with self.sessions() as session, session.begin():
                result = await session.execute(
                    update(OutboundSms)
                    .where(
                        OutboundSms.id == row.id,
                        OutboundSms.state == DeliveryState.QUEUED,
                        OutboundSms.next_attempt_at <= now,  # not taken meanwhile by another process
                    )
                    .values(next_attempt_at=lease_end)
                )
            if result.rowcount == 1:  # type: ignore[attr-defined]
                row.next_attempt_at = lease_end
                claimed.append(row)
        return claimed

    async def accepted(self, row: OutboundSms) -> None:
        await self._set(row.id, DeliveryState.ACCEPTED, attempts=row.attempts + 1, last_error=None)

    async def retry_later(self, row: OutboundSms, error: str, delay_seconds: float) -> None:
        async with self.sessions() as session, session.begin():
            await session.execute(
                update(OutboundSms)
                .where(OutboundSms.id == row.id, OutboundSms.state == DeliveryState.QUEUED)
                .values(
                    attempts=row.attempts + 1,
                    last_error=error[:200],
                    next_attempt_at=utcnow() + timedelta(seconds=delay_seconds),
                )
            )
            if row.request_id is not None:  # the stored answer says it is waiting for the gateway
                await session.execute(
                    update(Message)
                    .where(Message.answer_of == row.request_id, Message.delivery.is_(None))
                    .values(delivery=DeliveryState.QUEUED)
                )

    async def failed(self, row: OutboundSms, error: str) -> None:
        await self._set(row.id, DeliveryState.FAILED, attempts=row.attempts + 1, last_error=error[:200])

    async def report(self, report: DeliveryReport) -> bool:
        """Apply a delivery report; False when the SMS is unknown (purged, or an id the gateway made up)."""
        async with self.sessions() as session:
            if await session.get(OutboundSms, report.sms_id) is None:
                return False
        await self._set(report.sms_id, report.state, smsc_id=report.smsc_id)
        return True

    async def _set(self, sms_id: int, state: DeliveryState, **values: object) -> None:
        """Move an SMS (and the answer's ``Message``) to ``state``, unless it is already further along.

        Conditional UPDATEs, not read-then-write: a report and the dispatcher may change one SMS at once.
        """
        earlier = [s for s, rank in _RANK.items() if rank < _RANK[state]]
        changes = {k: v for k, v in values.items() if v is not None or k == "last_error"}
        async with self.sessions() as session, session.begin():
            await session.execute(
                update(OutboundSms)
                .where(OutboundSms.id == sms_id, OutboundSms.state.in_(earlier))
                .values(state=state, state_changed_at=utcnow())
            )
            if changes:
                await session.execute(update(OutboundSms).where(OutboundSms.id == sms_id).values(**changes))
            request_id = await session.scalar(select(OutboundSms.request_id).where(OutboundSms.id == sms_id))
            if request_id is not None:
                await session.execute(
                    update(Message)
                    .where(
                        Message.answer_of == request_id,
                        or_(Message.delivery.is_(None), Message.delivery.in_(earlier)),
                    )
                    .values(delivery=state)
                )

    async def purge(self, older_than: datetime) -> int:
        """Forget finished SMS (their text and number) once they are old."""
        async with self.sessions() as session, session.begin():
            result = await session.execute(
                delete(OutboundSms).where(
                    OutboundSms.state != DeliveryState.QUEUED, OutboundSms.state_changed_at < older_than
                )
            )
        return int(result.rowcount)  # type: ignore[attr-defined]
