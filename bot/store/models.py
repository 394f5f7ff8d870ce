"""SQL schema of the bot: users, conversations, messages, turn requests, seen inbound ids, feedback and access."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    DateTime,
    Dialect,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite hands back naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime()}


class Role(enum.StrEnum):
    USER = "user"
    ASSISTANT = "assistant"


class RequestState(enum.StrEnum):
    PENDING_ENQUEUE = "pending_enqueue"  # stored, not yet in the stream
    QUEUED = "queued"  # in the stream, waiting for or held by a worker
    DELIVERING = "delivering"  # a final reply is being sent
    ANSWERED = "answered"
    EXPIRED = "expired"
    FAILED = "failed"

    @property
    def open(self) -> bool:
        return self in (RequestState.PENDING_ENQUEUE, RequestState.QUEUED, RequestState.DELIVERING)


class DeliveryState(enum.StrEnum):
    QUEUED = "queued"
    ACCEPTED = "accepted"  # the gateway took it (SMS)
    DELIVERED = "delivered"
    FAILED = "failed"


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    return Enum(cls, name=name, native_enum=False, length=20, values_callable=lambda e: [m.value for m in e])


class User(Base):
    """Someone we talk to, by channel and address (Telegram chat id, E.164 number, console name)."""

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("channel", "address"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(2), default="tg")
    # Script of the answers: "cyrl" or "latn" as chosen in /language; None follows how the user writes.
    script: Mapped[str | None] = mapped_column(String(4), default=None)
    # How the user's latest message was written: Tajik in Latin letters (True), in Cyrillic (False), or not
    # Tajik at all (None: answered as the model writes, never transliterated).
    writes_latin: Mapped[bool | None] = mapped_column(default=None)
    opted_out: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    conversations: Mapped[list[Conversation]] = relationship(back_populates="user", cascade="all, delete-orphan")


class Conversation(Base):
    __tablename__ = "conversations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    active: Mapped[bool] = mapped_column(default=True)
    in_flight_request_id: Mapped[str | None] = mapped_column(String(36), default=None)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)

    user: Mapped[User] = relationship(back_populates="conversations")
    messages: Mapped[list[Message]] = relationship(
        back_populates="conversation", cascade="all, delete-orphan", order_by="Message.id"
    )


class Request(Base):
    """One model turn: the user messages it answers, its deadline and how it ended."""

    __tablename__ = "requests"
    __table_args__ = (Index("ix_requests_state_deadline", "state", "deadline"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    state: Mapped[RequestState] = mapped_column(_enum(RequestState, "request_state"))
    payload: Mapped[str] = mapped_column(Text)  # the TurnRequest as enqueued, so it can be enqueued again
    reply_stream: Mapped[str] = mapped_column(String(128))  # where its answer goes: whose delivery loop owns it
    received_at: Mapped[datetime] = mapped_column()  # first user message of the turn
    deadline: Mapped[datetime] = mapped_column()
    state_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    # The model the turn was routed to and the system prompt's version: notices count against the model too.
    model: Mapped[str | None] = mapped_column(String(128), default=None)
    prompt_version: Mapped[str | None] = mapped_column(String(16), default=None)


class Message(Base):
    __tablename__ = "messages"
    # The operators' reports read the messages of a day. Rows come in the order of their time, so on PostgreSQL
    # a BRIN index (a few pages for millions of rows, next to nothing per insert) finds a day's pages; SQLite
    # has no BRIN and keeps an ordinary index.
    __table_args__ = (Index("ix_messages_created_at", "created_at", postgresql_using="brin"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    role: Mapped[Role] = mapped_column(_enum(Role, "message_role"))
    text: Mapped[str] = mapped_column(Text)  # user messages: as the model reads them (Tajik letters restored)
    typed_text: Mapped[str | None] = mapped_column(Text, default=None)  # as the user typed it, when different
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # User messages: the turn that answered them (None while they wait for the next turn).
    # Assistant messages: the turn they answer; unique, so an answer is stored and sent once.
    request_id: Mapped[str | None] = mapped_column(String(36), index=True, default=None)
    answer_of: Mapped[str | None] = mapped_column(String(36), unique=True, default=None)
    model: Mapped[str | None] = mapped_column(String(128), default=None)
    prompt_version: Mapped[str | None] = mapped_column(String(16), default=None)
    prompt_tokens: Mapped[int | None] = mapped_column(default=None)
    completion_tokens: Mapped[int | None] = mapped_column(default=None)
    latency_ms: Mapped[int | None] = mapped_column(default=None)
    delivery: Mapped[DeliveryState | None] = mapped_column(_enum(DeliveryState, "delivery_state"), default=None)
    external_id: Mapped[str | None] = mapped_column(String(64), index=True, default=None)  # gateway message id

    conversation: Mapped[Conversation] = relationship(back_populates="messages")


class Vote(enum.StrEnum):
    UP = "up"
    DOWN = "down"


class Feedback(Base):
    """A 👍 or 👎 on one answer: one row per answer, so a second tap changes the vote instead of adding one."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), unique=True)
    vote: Mapped[Vote] = mapped_column(_enum(Vote, "vote"))
    voter: Mapped[str] = mapped_column(String(64))  # who tapped (a group member) or the SMS number
    comment: Mapped[str | None] = mapped_column(Text, default=None)  # what was wrong, after a 👎
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class AccessRule(Base):
    """An operator's decision about one address: blocked, or allowed in pilot mode. Kept apart from ``users``
    so that it holds before the first message and after ``/forget``."""

    __tablename__ = "access_rules"

    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    address: Mapped[str] = mapped_column(String(64), primary_key=True)
    blocked: Mapped[bool] = mapped_column(default=False)
    allowed: Mapped[bool] = mapped_column(default=False)
    notified: Mapped[bool] = mapped_column(default=False)  # a blocked user got their one notice
    changed_by: Mapped[str | None] = mapped_column(String(64), default=None)
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)


class InboundKey(Base):
    """Ids of updates and SMS already accepted: a retried webhook or a repeated MO is ignored."""

    __tablename__ = "inbound_keys"

    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    request_id: Mapped[str | None] = mapped_column(String(36), default=None)
    seen_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)  # pruned by age


class OutboundSms(Base):
    """An SMS handed to the SMS channel: answers and notices wait here until the gateway takes them.

    The row is written before the gateway is called, so an SMS is sent again only if the process dies between
    the gateway's acceptance and the row's update; the gateway's delivery reports update it (and the answer's
    ``Message.delivery``). An answer is sent once its turn is finished, so its ``Message`` row exists by then.
    """

    __tablename__ = "outbound_sms"
    __table_args__ = (Index("ix_outbound_sms_state_next_attempt", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    address: Mapped[str] = mapped_column(String(32))  # E.164
    text: Mapped[str] = mapped_column(Text)
    segments: Mapped[int] = mapped_column()
    # The turn this SMS answers (unique: a reply event handled twice is sent once); None for notices.
    request_id: Mapped[str | None] = mapped_column(String(36), unique=True, default=None)
    notice: Mapped[bool] = mapped_column(default=False)
    state: Mapped[DeliveryState] = mapped_column(_enum(DeliveryState, "delivery_state"), default=DeliveryState.QUEUED)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(String(200), default=None)
    smsc_id: Mapped[str | None] = mapped_column(String(64), default=None)  # the operator's message id, from a DLR
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    state_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
