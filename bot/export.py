"""Conversations as rated turns, read from the bot's database for training data (``soro data export-sft``).

The SQL side of the export: who said what, in turn order, with the vote on each answer. Users who are blocked
are left out here; users who used /forget have nothing left to read.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.store.models import AccessRule, Conversation, Feedback, Message, Request, Role, User, Vote


@dataclass(frozen=True)
class Turn:
    user: str  # the user messages this answer answers, joined as the model saw them
    answer: str
    vote: Vote | None
    model: str | None


@dataclass
class RatedConversation:
    conversation_id: int
    turns: list[Turn] = field(default_factory=list)


@dataclass(frozen=True)
class ReadResult:
    conversations: list[RatedConversation]
    blocked_answers: int  # answers of blocked users, left out


async def rated_conversations(sessions: async_sessionmaker[AsyncSession]) -> ReadResult:
    blocked = select(AccessRule.channel, AccessRule.address).where(AccessRule.blocked.is_(True)).subquery()
    is_blocked = select(1).where(blocked.c.channel == User.channel, blocked.c.address == User.address).exists()
    query = (
        select(Message.conversation_id, Message.role, Message.text, Message.model, Feedback.vote, is_blocked)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .join(User, User.id == Conversation.user_id)
        .join(Request, Request.id == Message.request_id, isouter=True)
        .join(Feedback, Feedback.message_id == Message.id, isouter=True)
        .where(Message.request_id.is_not(None))  # messages still waiting for a turn have no answer yet
        .order_by(
            Message.conversation_id,
            # The turn order the model saw (bot.pipeline): a message written during a turn joins the next one.
            func.coalesce(Request.received_at, Message.created_at),
            case((Message.role == Role.USER, 0), else_=1),
            Message.id,
        )
    )
    async with sessions() as session:
        rows = (await session.execute(query)).all()
    conversations: dict[int, RatedConversation] = {}
    blocked_answers = 0
    pending: list[str] = []
    current: int | None = None
    for conversation_id, role, text, model, vote, user_blocked in rows:
        if conversation_id != current:
            current, pending = conversation_id, []
        if role is Role.USER:
            pending.append(text)
            continue
        if user_blocked:
            blocked_answers += 1
        elif pending:
            turn = Turn("\n".join(pending), text, vote, model)
            conversations.setdefault(conversation_id, RatedConversation(conversation_id)).turns.append(turn)
        pending = []
    return ReadResult(list(conversations.values()), blocked_answers)


def runs(turns: list[Turn], keep_unrated: bool) -> Iterator[list[Turn]]:
    """The longest stretches of a conversation whose every answer is worth learning from (👍, or unrated when
    asked): an answer rated 👎 (or unrated, when not kept) ends one, so it is never trained on, even as context."""
    run: list[Turn] = []
    for turn in turns:
        if turn.vote is Vote.UP or (turn.vote is None and keep_unrated):
            run.append(turn)
            continue
        if run:
            yield run
        run = []
    if run:
        yield run
