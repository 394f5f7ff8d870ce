"""👍 and 👎 on answers: one vote per answer (a second tap changes it), an optional comment after a 👎.

Telegram votes name the answer by its request id (carried in the buttons' callback data); an SMS vote (``1``,
``2``, ``ХА``, ``НЕ``) rates the number's last answer, if nothing was written after it.
"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass
from datetime import timedelta

from redis.asyncio import Redis
from sqlalchemy import Row, Select, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.store.models import Conversation, Feedback, Message, Request, RequestState, Role, User, Vote, utcnow
from soro.metrics import BotMetrics

# An SMS "1" a day after the answer is a new question, not a rating.
RATING_WINDOW = timedelta(hours=12)
COMMENT_WINDOW_SECONDS = 86_400
MAX_COMMENT_CHARS = 500


class Change(enum.StrEnum):
    NEW = "new"
    CHANGED = "changed"
    SAME = "same"


@dataclass(frozen=True)
class Rated:
    feedback_id: int
    change: Change
    vote: Vote
    model: str
    channel: str
    language: str


class FeedbackStore:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], redis: Redis, prefix: str, metrics: BotMetrics
    ) -> None:
        self.sessions = sessions
        self.redis = redis
        self.prefix = prefix
        self.metrics = metrics

    async def rate(self, request_id: str, vote: Vote, voter: str) -> Rated | None:
        """Record ``voter``'s vote on the answer to ``request_id``; None when there is no such answer (forgotten)."""
        for _ in range(10):
            async with self.sessions() as session, session.begin():
                answer = _answers().where(Message.answer_of == request_id, Message.role == Role.ASSISTANT)
                row = (await session.execute(answer)).first()
                if row is not None:
                    return await self._vote(session, row, vote=vote, voter=voter)
                state = await session.scalar(select(Request.state).where(Request.id == request_id))
            if state is not RequestState.DELIVERING:
                return None
            # Sent but not yet recorded (the row is written just after the send): a quick thumb waits for it.
            await asyncio.sleep(0.2)
        return None

    async def rate_last(self, channel: str, address: str, vote: Vote) -> Rated | None:
        """Rate the last answer ``address`` got, if it is recent and nothing was written after it."""
        async with self.sessions() as session, session.begin():
            last = (
                await session.execute(
                    select(Message.id, Message.role, Message.created_at)
                    .join(Conversation, Conversation.id == Message.conversation_id)
                    .join(User, User.id == Conversation.user_id)
                    .where(User.channel == channel, User.address == address)
                    .order_by(Message.id.desc())
                    .limit(1)
                )
            ).first()
            if last is None or last.role is not Role.ASSISTANT or utcnow() - last.created_at > RATING_WINDOW:
                return None
            row = (await session.execute(_answers().where(Message.id == last.id))).one()
            return await self._vote(session, row, vote=vote, voter=address)

    async def _vote(
        self,
        session: AsyncSession,
        answer: Row[int, str | None, str, str],
        *,
        vote: Vote,
        voter: str,
    ) -> Rated:
        message_id, model, channel, language = answer
        now = utcnow()
        existing = await session.scalar(select(Feedback).where(Feedback.message_id == message_id).with_for_update())
        if existing is None:
            try:
                async with session.begin_nested():
                    existing = Feedback(message_id=message_id, vote=vote, voter=voter, created_at=now, updated_at=now)
                    session.add(existing)
                    await session.flush()
                change = Change.NEW
            except IntegrityError:  # two taps at once: the other one made the row
                existing = await session.scalar(
                    select(Feedback).where(Feedback.message_id == message_id).with_for_update()
                )
                assert existing is not None
                change = Change.SAME if existing.vote is vote else Change.CHANGED
        else:
            change = Change.SAME if existing.vote is vote else Change.CHANGED
        if change is Change.CHANGED:
            existing.vote, existing.voter, existing.updated_at = vote, voter, now
        model = model or "unknown"
        if change is not Change.SAME:
            # A changed vote counts once more, under its new side: the metric counts decisions as they are made.
            self.metrics.feedback.labels(model, channel, vote.value).inc()
        return Rated(existing.id, change, vote, model, channel, language)

    # Comments after a 👎: the question the bot asked is remembered for a day, for the voter only.

    def _question_key(self, chat_id: int, message_id: int) -> str:
        return f"{self.prefix}:feedback-question:{chat_id}:{message_id}"

    async def asked_why(self, chat_id: int, message_id: int, feedback_id: int, voter: str) -> None:
        await self.redis.set(
            self._question_key(chat_id, message_id), f"{feedback_id}:{voter}", ex=COMMENT_WINDOW_SECONDS
        )

    async def comment(self, chat_id: int, replied_to: int, voter: str, text: str) -> bool:
        """Store ``text`` as the comment of the vote whose question ``replied_to`` is; False when it is none."""
        key = self._question_key(chat_id, replied_to)
        raw = await self.redis.get(key)
        if raw is None:
            return False
        feedback_id, _, asked = (raw.decode() if isinstance(raw, bytes) else str(raw)).partition(":")
        if asked != voter:
            return False
        async with self.sessions() as session, session.begin():
            feedback = await session.get(Feedback, int(feedback_id))
            if feedback is None:  # forgotten meanwhile
                return False
            # Kept until it expires: a retried update stores the same comment again instead of becoming a question.
            feedback.comment = text.strip()[:MAX_COMMENT_CHARS]
            feedback.updated_at = utcnow()
        return True


def _answers() -> Select[int, str | None, str, str]:
    """An answer's id and model, and the channel and language of the user it answered."""
    return (
        select(Message.id, Message.model, User.channel, User.language)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .join(User, User.id == Conversation.user_id)
    )
