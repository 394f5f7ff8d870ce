"""Accepting messages from any channel and turning them into queued model turns.

accept → normalise → rate-limit → persist (SQL) → build context → enqueue. A message is "accepted" only once
it is stored and its turn is in the stream (or it joined a turn already in flight): callers answer their gateway
with success only then, so a failure makes the gateway retry, and the retry is recognised by its inbound key.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import time
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import case, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.access import Access, AccessControl
from bot.context import build_context
from bot.feedback import FeedbackStore
from bot.limits import UserLimits, Verdict
from bot.reading import SCRIPTS, answers_in_latin, read
from bot.routing import model_for, prompt_version
from bot.store.models import Conversation, InboundKey, Message, Request, RequestState, Role, User, utcnow
from bot.texts import LANGUAGES, T, text
from inference.queue import ChatMessage, ReplyEvent, ReplyKind, RequestQueue, TurnRequest
from soro.metrics import BotMetrics
from soro.settings import Settings
from tajik import normalize

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Inbound:
    """A message as a channel received it."""

    channel: str
    address: str  # Telegram chat id, E.164 number, console user
    text: str | None  # None: a sticker, photo, voice or other non-text message
    dedup_key: str | None = None  # Telegram update_id, gateway message id
    received_at: float = field(default_factory=time.time)


class Outcome(enum.StrEnum):
    QUEUED = "queued"  # a new turn is in the stream
    JOINED = "joined"  # stored; joins the next turn, after the one in flight
    DUPLICATE = "duplicate"
    REJECTED = "rejected"  # answered with ``notice`` instead


@dataclass(frozen=True)
class Accepted:
    outcome: Outcome
    language: str = "tg"
    notice: str | None = None
    request_id: str | None = None
    # why it was rejected: non_text, too_long, empty, quota, rate_limited, busy, blocked, not_allowed
    reason: str | None = None


@dataclass(frozen=True)
class TurnOptions:
    """How turns of one channel are made: SMS asks for short answers within a character budget."""

    max_tokens: int
    char_budget: int | None = None
    instruction: str | None = None  # appended to the system prompt
    reply_stream: str | None = None  # default: the channel's shared reply stream
    stream_partials: bool = True  # False: the worker sends only the final answer (SMS)


@dataclass(frozen=True)
class Target:
    """Where and to whom a reply goes."""

    channel: str
    address: str
    language: str
    request_id: str
    conversation_id: int
    received_at: float
    model: str | None = None  # the model the turn was routed to
    feedback: bool = False  # a model's answer that the user may rate (not a notice)
    latin: bool = False  # Tajik answers go out in Latin letters (``tajik.to_latin``)


class DeliveryInProgress(Exception):
    """Another delivery holds the claim on this reply; try again after its lease."""


class Pipeline:
    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        queue: RequestQueue,
        limits: UserLimits,
        metrics: BotMetrics,
        turn_options: Mapping[str, TurnOptions] | None = None,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.queue = queue
        self.limits = limits
        self.metrics = metrics
        self.turn_options = dict(turn_options or {})
        self.access = AccessControl(settings, sessions, limits)
        self.feedback = FeedbackStore(sessions, queue.redis, queue.names.prefix, metrics)
        self.prompt_version = prompt_version(settings.system_prompt)

    def options(self, channel: str) -> TurnOptions:
        return self.turn_options.get(channel, TurnOptions(max_tokens=self.settings.llm_max_tokens))

    # Accepting messages

    async def accept(self, inbound: Inbound) -> Accepted:
        refused = await self.refusal(inbound.channel, inbound.address)
        if refused is not None:
            return refused
        enqueue: TurnRequest | None = None
        async with self.sessions() as session, session.begin():
            if inbound.dedup_key is not None and not await _claim_key(session, inbound):
                language = await _language_of(session, inbound.channel, inbound.address)
                self.metrics.duplicates.labels(inbound.channel).inc()
                stranded = await _stranded_request(session, inbound)
                result = Accepted(Outcome.DUPLICATE, language)
            else:
                self.metrics.messages_received.labels(inbound.channel).inc()
                result, enqueue = await self._accept_new(session, inbound)
                stranded = None
        if enqueue is not None:
            await self._enqueue(enqueue)
        if stranded is not None:
            await self._requeue(stranded)
        log.info("message from %s:%s %s", inbound.channel, redact(inbound.address), result.outcome.value)
        if self.settings.debug_log_text:
            log.info("text from %s:%s: %r", inbound.channel, redact(inbound.address), inbound.text)
        return result

    async def refusal(self, channel: str, address: str) -> Accepted | None:
        """None when ``address`` may talk to the bot; otherwise what to tell it (a notice at most once)."""
        access = await self.access.decide(channel, address)
        if access is Access.OK:
            return None
        self.metrics.messages_rejected.labels(channel, access.value).inc()
        log.info("message from %s:%s refused: %s", channel, redact(address), access.value)
        if not await self.access.should_notify(channel, address, access):
            return Accepted(Outcome.REJECTED, reason=access.value)
        language = await self.language(channel, address)
        notice = text(T.BLOCKED if access is Access.BLOCKED else T.NOT_ALLOWED, language)
        return Accepted(Outcome.REJECTED, language, notice, reason=access.value)

    async def _accept_new(self, session: AsyncSession, inbound: Inbound) -> tuple[Accepted, TurnRequest | None]:
        user = await _user(session, inbound.channel, inbound.address)
        lang = user.language

        def reject(key: T, reason: str, **values: object) -> tuple[Accepted, None]:
            self.metrics.messages_rejected.labels(inbound.channel, reason).inc()
            return Accepted(Outcome.REJECTED, lang, text(key, lang, **values), reason=reason), None

        if inbound.text is None:
            return reject(T.NON_TEXT, "non_text")
        if len(inbound.text) > self.settings.max_input_chars:
            return reject(T.TOO_LONG, "too_long", limit=self.settings.max_input_chars)
        body = normalize(inbound.text)
        if not body:
            return reject(T.EMPTY, "empty")
        verdict = await self.limits.check_message(f"{inbound.channel}:{inbound.address}")
        if verdict is Verdict.QUOTA:
            return reject(T.QUOTA, "quota")
        if verdict is Verdict.RATE_LIMITED:
            return reject(T.RATE_LIMITED, "rate_limited")

        conversation, fresh = await _active_conversation(session, user)
        if conversation.in_flight_request_id is None and await self.queue.backlog() >= self.settings.backlog_limit:
            return reject(T.BUSY, "busy")
        received = datetime.fromtimestamp(inbound.received_at, UTC)
        reading = read(body)
        user.writes_latin = reading.latin
        session.add(
            Message(
                conversation_id=conversation.id,
                role=Role.USER,
                text=reading.text,
                typed_text=reading.typed,
                created_at=received,
            )
        )
        await session.flush()
        if conversation.in_flight_request_id is not None:
            return Accepted(Outcome.JOINED, lang), None
        request = await self._new_turn(session, conversation, inbound.channel, fresh)
        if inbound.dedup_key is not None:
            await session.execute(
                update(InboundKey)
                .where(InboundKey.channel == inbound.channel, InboundKey.key == inbound.dedup_key)
                .values(request_id=request.request_id)
            )
        return Accepted(Outcome.QUEUED, lang, request_id=request.request_id), request

    async def _new_turn(
        self, session: AsyncSession, conversation: Conversation, channel: str, fresh: bool = False
    ) -> TurnRequest:
        """Make a turn of the user messages waiting in ``conversation`` and mark it in flight.

        ``fresh``: the conversation was created in this transaction, so it has no earlier turns to look up.
        """
        request_id = str(uuid.uuid4())
        waiting = (
            await session.execute(
                update(Message)
                .where(
                    Message.conversation_id == conversation.id,
                    Message.role == Role.USER,
                    Message.request_id.is_(None),
                )
                .values(request_id=request_id)
                .returning(Message.created_at, Message.text)
                .execution_options(synchronize_session=False)
            )
        ).all()
        if fresh:
            turns = [ChatMessage(Role.USER.value, text) for _, text in waiting]
        else:
            # Turn by turn: a message that arrived while a turn was in flight belongs after that turn's answer.
            history = (
                await session.execute(
                    select(Message.role, Message.text)
                    .join(Request, Request.id == Message.request_id, isouter=True)
                    .where(Message.conversation_id == conversation.id, Message.request_id.is_not(None))
                    .order_by(
                        func.coalesce(Request.received_at, Message.created_at).desc(),
                        case((Message.role == Role.USER, 0), else_=1).desc(),
                        Message.id.desc(),
                    )
                    .limit(200)
                )
            ).all()
            turns = [ChatMessage(role.value, text) for role, text in reversed(history)]
        options = self.options(channel)
        system_prompt = self.settings.system_prompt
        if options.instruction:
            system_prompt = f"{system_prompt}\n{options.instruction}"
        messages = build_context(
            turns,
            system_prompt,
            self.settings.context_token_budget,
            self.settings.chars_per_token,
        )
        received_at = min(created_at for created_at, _ in waiting)
        now = time.time()
        turn = TurnRequest(
            request_id=request_id,
            conversation_id=conversation.id,
            channel=channel,
            reply_stream=options.reply_stream or self.queue.names.replies(channel),
            messages=messages,
            deadline=now + self.settings.request_deadline_seconds,
            max_tokens=options.max_tokens,
            created_at=received_at.timestamp(),
            char_budget=options.char_budget,
            model=model_for(self.settings, conversation.id),
            stream_partials=options.stream_partials,
        )
        session.add(
            Request(
                id=request_id,
                conversation_id=conversation.id,
                state=RequestState.QUEUED,
                payload=turn.to_json(),
                reply_stream=turn.reply_stream,
                received_at=received_at,
                deadline=datetime.fromtimestamp(turn.deadline, UTC),
                model=turn.model,
                prompt_version=self.prompt_version,
            )
        )
        conversation.in_flight_request_id = request_id
        return turn

    async def _enqueue(self, turn: TurnRequest) -> None:
        """Put a turn stored as QUEUED into the stream.

        Stored first, enqueued second: a turn in the stream always has its row. When Redis fails, the turn is
        marked PENDING_ENQUEUE and the caller fails too (a webhook answers 5xx, so Telegram retries; the
        housekeeping loop enqueues it meanwhile). If the process dies between the two, the turn ends at its
        deadline with a polite notice rather than in silence.
        """
        try:
            await self.queue.enqueue(turn)
        except Exception:
            with contextlib.suppress(Exception):
                await self._set_state(turn.request_id, RequestState.QUEUED, RequestState.PENDING_ENQUEUE)
            raise

    async def _requeue(self, turn: TurnRequest) -> None:
        """Enqueue a turn that Redis refused earlier."""
        await self.queue.enqueue(turn)
        await self._set_state(turn.request_id, RequestState.PENDING_ENQUEUE, RequestState.QUEUED)

    async def _set_state(self, request_id: str, old: RequestState, new: RequestState) -> None:
        async with self.sessions() as session, session.begin():
            await session.execute(
                update(Request)
                .where(Request.id == request_id, Request.state == old)
                .values(state=new, state_changed_at=utcnow())
            )

    # Delivery side

    async def claim_final(self, request_id: str, lease_seconds: float = 60.0) -> Target | None:
        """Take the right to send the final reply of ``request_id``; None when it was answered already.

        Raises ``DeliveryInProgress`` while another claim holds it: the caller must retry later rather than
        drop the reply, since that claim may belong to a process that died mid-send. Such a claim is taken over
        after ``lease_seconds``.
        """
        now = utcnow()
        async with self.sessions() as session, session.begin():
            claimed = await session.execute(
                update(Request)
                .where(
                    Request.id == request_id,
                    (Request.state.in_([RequestState.PENDING_ENQUEUE, RequestState.QUEUED]))
                    | (
                        (Request.state == RequestState.DELIVERING)
                        & (Request.state_changed_at < now - timedelta(seconds=lease_seconds))
                    ),
                )
                .values(state=RequestState.DELIVERING, state_changed_at=now)
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                state = await session.scalar(select(Request.state).where(Request.id == request_id))
                if state is RequestState.DELIVERING:
                    raise DeliveryInProgress(request_id)
                return None
            return await _target(session, request_id)

    async def target(self, request_id: str) -> Target | None:
        """Where partial replies of an open request go; None when the request is finished or unknown."""
        async with self.sessions() as session:
            request = await session.get(Request, request_id)
            if request is None or request.state not in (RequestState.QUEUED, RequestState.PENDING_ENQUEUE):
                return None
            return await _target(session, request_id)

    async def finish(self, event: ReplyEvent, delivered_text: str, external_id: str | None = None) -> None:
        """Record how a turn ended, free its conversation and queue the messages that arrived meanwhile."""
        state = {
            ReplyKind.FINAL: RequestState.ANSWERED,
            ReplyKind.EXPIRED: RequestState.EXPIRED,
            ReplyKind.FAILED: RequestState.FAILED,
        }[event.kind]
        next_turn: TurnRequest | None = None
        async with self.sessions() as session, session.begin():
            request = await session.get(Request, event.request_id)
            if request is None or not request.state.open:  # forgotten, or recorded by an earlier try
                return
            request.state = state
            request.finished_at = request.state_changed_at = utcnow()
            if event.kind is ReplyKind.FINAL:
                session.add(
                    Message(
                        conversation_id=request.conversation_id,
                        role=Role.ASSISTANT,
                        text=delivered_text,
                        request_id=event.request_id,
                        answer_of=event.request_id,
                        model=event.model or request.model,
                        prompt_version=request.prompt_version,
                        prompt_tokens=event.prompt_tokens,
                        completion_tokens=event.completion_tokens,
                        latency_ms=int((request.finished_at - request.received_at).total_seconds() * 1000),
                        external_id=external_id,
                    )
                )
            conversation = await session.get(Conversation, request.conversation_id, with_for_update=True)
            if conversation is not None and conversation.in_flight_request_id == event.request_id:
                conversation.in_flight_request_id = None
                if conversation.active and await _has_waiting(session, conversation.id):
                    user = await session.get(User, conversation.user_id)
                    assert user is not None
                    next_turn = await self._new_turn(session, conversation, user.channel)
        if next_turn is not None:
            await self._enqueue(next_turn)

    # Housekeeping, run periodically by the delivery loop

    async def overdue(self, reply_streams: Collection[str], grace_seconds: float) -> list[str]:
        """Queued requests answered into ``reply_streams`` and past their deadline (plus grace, for the worker's
        own notice to come first). Only the process reading those streams can tell these users."""
        limit = utcnow() - timedelta(seconds=grace_seconds)
        async with self.sessions() as session:
            rows = await session.scalars(
                select(Request.id)
                .where(
                    Request.state == RequestState.QUEUED,
                    Request.deadline < limit,
                    Request.reply_stream.in_(list(reply_streams)),
                )
                .limit(100)
            )
            return list(rows)

    async def enqueue_stranded(self, older_than_seconds: float = 5.0) -> int:
        """Enqueue turns that were stored but never reached the stream (Redis failed at that moment)."""
        limit = utcnow() - timedelta(seconds=older_than_seconds)
        async with self.sessions() as session:
            rows = (
                await session.scalars(
                    select(Request).where(
                        Request.state == RequestState.PENDING_ENQUEUE, Request.state_changed_at < limit
                    )
                )
            ).all()
        for request in rows:
            await self._requeue(TurnRequest.from_json(request.payload))
        return len(rows)

    # Commands

    async def first_time(self, channel: str, key: str) -> bool:
        """Record an inbound key (a command's update id); False when it was seen before."""
        async with self.sessions() as session, session.begin():
            fresh = await _claim_key(session, Inbound(channel, "", None, dedup_key=key))
        if not fresh:
            self.metrics.duplicates.labels(channel).inc()
        return fresh

    async def language(self, channel: str, address: str) -> str:
        async with self.sessions() as session:
            return await _language_of(session, channel, address)

    async def set_language(self, channel: str, address: str, language: str) -> None:
        if language not in LANGUAGES:
            raise ValueError(f"unknown language {language!r}")
        async with self.sessions() as session, session.begin():
            user = await _user(session, channel, address)
            user.language = language

    async def set_script(self, channel: str, address: str, script: str) -> None:
        """Answer Tajik messages of this user in ``script`` ("cyrl" or "latn"), whatever script they write in."""
        if script not in SCRIPTS:
            raise ValueError(f"unknown script {script!r}")
        async with self.sessions() as session, session.begin():
            user = await _user(session, channel, address)
            user.script = script

    async def new_conversation(self, channel: str, address: str) -> str:
        """Close the active conversation; the next message starts a fresh one. Returns the user's language."""
        async with self.sessions() as session, session.begin():
            user = await _user(session, channel, address)
            await session.execute(update(Conversation).where(Conversation.user_id == user.id).values(active=False))
            return user.language

    async def forget(self, channel: str, address: str) -> str:
        """Delete everything stored about a user. Returns the language to say goodbye in."""
        async with self.sessions() as session, session.begin():
            user = (await session.scalars(select(User).where(User.channel == channel, User.address == address))).first()
            if user is None:
                return "tg"
            language = user.language
            conversation_ids = select(Conversation.id).where(Conversation.user_id == user.id)
            await session.execute(delete(Message).where(Message.conversation_id.in_(conversation_ids)))
            await session.execute(delete(Request).where(Request.conversation_id.in_(conversation_ids)))
            await session.execute(delete(Conversation).where(Conversation.user_id == user.id))
            await session.delete(user)
            return language

    async def set_opted_out(self, channel: str, address: str, opted_out: bool) -> None:
        async with self.sessions() as session, session.begin():
            user = await _user(session, channel, address)
            user.opted_out = opted_out

    async def opted_out(self, channel: str, address: str) -> bool:
        async with self.sessions() as session:
            user = (await session.scalars(select(User).where(User.channel == channel, User.address == address))).first()
            return bool(user and user.opted_out)


async def _claim_key(session: AsyncSession, inbound: Inbound) -> bool:
    """Record the inbound key; False when it was seen before."""
    assert inbound.dedup_key is not None
    try:
        async with session.begin_nested():
            session.add(InboundKey(channel=inbound.channel, key=inbound.dedup_key))
            await session.flush()
    except IntegrityError:
        return False
    return True


async def _stranded_request(session: AsyncSession, inbound: Inbound) -> TurnRequest | None:
    """A retried update whose first delivery stored its turn but could not enqueue it: enqueue it now."""
    key = await session.get(InboundKey, (inbound.channel, inbound.dedup_key))
    if key is None or key.request_id is None:
        return None
    request = await session.get(Request, key.request_id)
    if request is None or request.state is not RequestState.PENDING_ENQUEUE:
        return None
    return TurnRequest.from_json(request.payload)


async def _user(session: AsyncSession, channel: str, address: str) -> User:
    query = select(User).where(User.channel == channel, User.address == address)
    user = (await session.scalars(query)).first()
    if user is not None:
        return user
    try:
        async with session.begin_nested():
            user = User(channel=channel, address=address)
            session.add(user)
            await session.flush()
            return user
    except IntegrityError:  # created concurrently by another update of the same user
        return (await session.scalars(query)).one()


async def _language_of(session: AsyncSession, channel: str, address: str) -> str:
    language = await session.scalar(select(User.language).where(User.channel == channel, User.address == address))
    return language or "tg"


async def _active_conversation(session: AsyncSession, user: User) -> tuple[Conversation, bool]:
    """The user's active conversation (locked for this transaction), and whether it was just created."""
    conversation = (
        await session.scalars(
            select(Conversation)
            .where(Conversation.user_id == user.id, Conversation.active.is_(True))
            .order_by(Conversation.id.desc())
            .with_for_update()
        )
    ).first()
    if conversation is not None:
        return conversation, False
    conversation = Conversation(user_id=user.id)
    session.add(conversation)
    await session.flush()
    return conversation, True


async def _has_waiting(session: AsyncSession, conversation_id: int) -> bool:
    waiting = await session.scalar(
        select(Message.id)
        .where(
            Message.conversation_id == conversation_id,
            Message.role == Role.USER,
            Message.request_id.is_(None),
        )
        .limit(1)
    )
    return waiting is not None


async def _target(session: AsyncSession, request_id: str) -> Target | None:
    row = (
        await session.execute(
            select(
                User.channel,
                User.address,
                User.language,
                Request.conversation_id,
                Request.received_at,
                Request.model,
                User.script,
                User.writes_latin,
            )
            .join(Conversation, Conversation.id == Request.conversation_id)
            .join(User, User.id == Conversation.user_id)
            .where(Request.id == request_id)
        )
    ).first()
    if row is None:
        return None
    channel, address, language, conversation_id, received_at, model, script, writes_latin = row
    latin = answers_in_latin(script, writes_latin)
    return Target(channel, address, language, request_id, conversation_id, received_at.timestamp(), model, latin=latin)


def redact(address: str) -> str:
    """An address for log lines: its last four characters, enough to correlate, never a whole phone number."""
    return address if len(address) <= 4 else f"…{address[-4:]}"
