"""Accepting messages from any channel and turning them into queued model turns.

accept → normalise → rate-limit → persist (SQL) → build context → enqueue. A message is "accepted" only once
it is stored and its turn is in the stream (or it joined a turn already in flight): callers answer their gateway
with success only then, so a failure makes the gateway retry, and the retry is recognised by its inbound key.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from bot.access import Access, AccessControl
from bot.context import build_context
from bot.feedback import FeedbackStore
from bot.limits import UserLimits, Verdict
from bot.reading import SCRIPTS, answers_in_latin, read
from bot.routing import model_for, prompt_version
from bot.store import queries
from bot.store.models import Conversation, InboundKey, Message, Request, RequestState, User, utcnow
from bot.texts import LANGUAGES, T, text
from inference.queue import ChatMessage, ReplyEvent, ReplyKind, RequestQueue, TurnRequest
from soro.group_commit import GroupCommit
from soro.metrics import BotMetrics
from soro.outage import dependency_of
from soro.settings import Settings
from tajik import normalize

log = logging.getLogger(__name__)

Item = TypeVar("Item")
Out = TypeVar("Out")
# How long a turn in the stream may still read PENDING_ENQUEUE: far below housekeeping's 5 s, long enough for
# the marks of a few messages a second to share one transaction (a mark to itself costs a message a third of
# its accept's CPU). Nobody waits for it: a final claimed first is claimed from PENDING_ENQUEUE just the same.
QUEUED_MARK_LINGER_SECONDS = 0.25


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


@dataclass(frozen=True)
class _Arrival:
    """A message on its way into a group commit."""

    inbound: Inbound
    body: str | None  # the normalised text as the model reads it; None when ``rejection`` says why there is none
    rejection: tuple[T, str, Mapping[str, object]] | None = None  # notice, reason, its values
    typed: str | None = None  # the text as the user typed it, when it differs from ``body``
    latin: bool | None = None  # Tajik typed in Latin letters (True), in Cyrillic (False); None: not Tajik


@dataclass(frozen=True)
class _Checks:
    """What Redis says of a batch: each message's rate-limit verdict (by ``id`` of its arrival) and the backlog."""

    verdicts: Mapping[int, Verdict]
    backlog: int


def _retrieved(task: asyncio.Future[_Checks]) -> None:
    """A batch whose transaction failed before it looked at its checks has no use for their outcome (left to
    finish, not cancelled: a Redis command cut off mid-reply costs its connection)."""
    if not task.cancelled():
        task.exception()


@dataclass(frozen=True)
class _Done:
    accepted: Accepted
    turn: TurnRequest | None = None  # a new turn, to enqueue once committed
    stranded: TurnRequest | None = None  # a retried update's turn that never reached the stream


def _rejected(key: T, reason: str, values: Mapping[str, object], language: str) -> _Done:
    return _Done(Accepted(Outcome.REJECTED, language, text(key, language, **values), reason=reason))


def _user_message(arrival: _Arrival, conversation_id: int, request_id: str | None) -> queries.NewUserMessage:
    assert arrival.body is not None
    received = datetime.fromtimestamp(arrival.inbound.received_at, UTC)
    return queries.NewUserMessage(conversation_id, arrival.body, arrival.typed, received, request_id)


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
        self.engine: AsyncEngine = sessions.kw["bind"]
        linger, most = settings.group_commit_linger_seconds, settings.group_commit_max
        # SQLite has one writer: a second write transaction would only wait for the lock (or fail to upgrade).
        at_once = 1 if self.engine.dialect.name == "sqlite" else settings.group_commit_concurrency
        self.accepts: GroupCommit[_Arrival, _Done] = GroupCommit(self._accept_batch, linger, most, at_once)
        self.claims: GroupCommit[tuple[str, float], Target | None] = GroupCommit(
            self._claim_batch, linger, most, at_once
        )
        self.finishes: GroupCommit[tuple[ReplyEvent, str, str | None], None] = GroupCommit(
            self._finish_batch, linger, most, at_once
        )
        self.lookups: GroupCommit[str, Target | None] = GroupCommit(self._target_batch, linger, most, at_once)
        self.marks: GroupCommit[list[str], None] = GroupCommit(
            self._mark_batch, QUEUED_MARK_LINGER_SECONDS, most, lone_at_once=False
        )
        self._marking: set[asyncio.Task[None]] = set()
        self._unmarked: set[str] = set()  # turns in the stream still PENDING_ENQUEUE: not to enqueue again

    def options(self, channel: str) -> TurnOptions:
        return self.turn_options.get(channel, TurnOptions(max_tokens=self.settings.llm_max_tokens))

    # Accepting messages

    async def accept(self, inbound: Inbound) -> Accepted:
        refused = await self.refusal(inbound.channel, inbound.address)
        if refused is not None:
            return refused
        arrival = self._arrival(inbound)
        done = await self.accepts.submit(arrival)
        result = done.accepted
        if result.outcome is Outcome.DUPLICATE:
            self.metrics.duplicates.labels(inbound.channel).inc()
        else:
            self.metrics.messages_received.labels(inbound.channel).inc()
            if result.reason is not None:
                self.metrics.messages_rejected.labels(inbound.channel, result.reason).inc()
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

    def _arrival(self, inbound: Inbound) -> _Arrival:
        """What can be decided before the database: the text's checks and its normal form."""
        if inbound.text is None:
            return _Arrival(inbound, None, (T.NON_TEXT, "non_text", {}))
        if len(inbound.text) > self.settings.max_input_chars:
            return _Arrival(inbound, None, (T.TOO_LONG, "too_long", {"limit": self.settings.max_input_chars}))
        body = normalize(inbound.text)
        if not body:
            return _Arrival(inbound, None, (T.EMPTY, "empty", {}))
        reading = read(body)
        return _Arrival(inbound, reading.text, typed=reading.typed, latin=reading.latin)

    async def _accept_batch(self, arrivals: Sequence[_Arrival]) -> list[_Done | BaseException]:
        """Accept messages that arrived together: their rate limits and the backlog asked of Redis while the
        transaction's first statements run, one transaction for all of them, one Redis pipeline for their turns.
        Each caller hears back only once the commit is durable and its turn is in the stream."""
        checks = asyncio.ensure_future(self._checks([arrival for arrival in arrivals if arrival.body is not None]))
        checks.add_done_callback(_retrieved)
        outcomes = await self._store_batch(arrivals, checks)
        await self._enqueue_batch(outcomes)
        return outcomes

    async def _checks(self, counted: Sequence[_Arrival]) -> _Checks:
        verdicts, backlog = await asyncio.gather(
            self.limits.check_messages([f"{a.inbound.channel}:{a.inbound.address}" for a in counted]),
            self.queue.backlog(),
        )
        return _Checks({id(arrival): verdict for arrival, verdict in zip(counted, verdicts, strict=True)}, backlog)

    async def _store_batch(
        self, arrivals: Sequence[_Arrival], checks: asyncio.Future[_Checks]
    ) -> list[_Done | BaseException]:
        turns_before = 0  # of the messages stored one by one so far: the next one sees them in the backlog

        async def store(connection: AsyncConnection, batch: Sequence[_Arrival]) -> list[_Done]:
            return await self._store_rounds(connection, batch, checks, turns_before)

        def stored(done: _Done) -> None:
            nonlocal turns_before
            turns_before += done.turn is not None

        return await self._together_or_one_by_one(arrivals, store, stored)

    async def _together_or_one_by_one(
        self,
        items: Sequence[Item],
        run: Callable[[AsyncConnection, Sequence[Item]], Awaitable[Sequence[Out]]],
        stored: Callable[[Out], None] | None = None,
    ) -> list[Out | BaseException]:
        """``run`` on all of ``items`` in one transaction of set statements, an outcome per item. When that fails
        for another reason than an outage (one item's row refused, say), each item runs in a transaction of its
        own, so only the bad one fails; ``stored`` hears of each outcome committed that way, in order."""
        try:
            async with self.engine.begin() as connection:
                return list(await run(connection, items))
        except Exception as exc:
            if dependency_of(exc) is not None or len(items) == 1:
                return [exc] * len(items)
            log.warning("a group commit of %d failed; running them one by one", len(items), exc_info=True)
        outcomes: list[Out | BaseException] = []
        for item in items:
            try:
                async with self.engine.begin() as connection:
                    [outcome] = await run(connection, [item])
            except Exception as exc:
                outcomes.append(exc)
                continue
            outcomes.append(outcome)
            if stored is not None:
                stored(outcome)
        return outcomes

    async def _store_rounds(
        self,
        connection: AsyncConnection,
        arrivals: Sequence[_Arrival],
        checks: asyncio.Future[_Checks],
        turns_before: int,
    ) -> list[_Done]:
        """Accept ``arrivals`` on one connection, in rounds of set statements. A round takes the first message
        of each chat and each inbound key; a second message of a chat (or a retried update) waits for the next
        round, which sees what the first stored."""
        outcomes: dict[int, _Done] = {}
        remaining = list(range(len(arrivals)))
        while remaining:
            chats: set[tuple[str, str]] = set()
            keys: set[tuple[str, str | None]] = set()
            this_round: list[int] = []
            later: list[int] = []
            for i in remaining:
                inbound = arrivals[i].inbound
                chat, key = (inbound.channel, inbound.address), (inbound.channel, inbound.dedup_key)
                if chat in chats or (inbound.dedup_key is not None and key in keys):
                    later.append(i)
                    continue
                chats.add(chat)
                keys.add(key)
                this_round.append(i)
            done = await self._store_round(connection, [arrivals[i] for i in this_round], checks, turns_before)
            for i, outcome in zip(this_round, done, strict=True):
                outcomes[i] = outcome
                turns_before += outcome.turn is not None
            remaining = later
        return [outcomes[i] for i in range(len(arrivals))]

    async def _store_round(
        self,
        connection: AsyncConnection,
        arrivals: Sequence[_Arrival],
        checks: asyncio.Future[_Checks],
        turns_before: int,
    ) -> list[_Done]:
        """Accept messages of distinct chats and keys with one statement per table. Only a retried update and
        the next turn of a conversation with earlier turns (whose history is read) take statements of their own."""
        outcomes: dict[int, _Done] = {}
        request_ids = [str(uuid.uuid4()) for _ in arrivals]  # the turn each message may start
        keyed = [(i, arrival.inbound) for i, arrival in enumerate(arrivals) if arrival.inbound.dedup_key is not None]
        claimed = [(inbound.channel, inbound.dedup_key or "", request_ids[i]) for i, inbound in keyed]
        new_keys = await queries.claim_keys(connection, claimed) if claimed else set()
        for i, inbound in keyed:
            if (inbound.channel, inbound.dedup_key) not in new_keys:
                outcomes[i] = await self._duplicate(connection, inbound)
        fresh = [i for i in range(len(arrivals)) if i not in outcomes]
        chat = {i: (arrivals[i].inbound.channel, arrivals[i].inbound.address) for i in fresh}
        users = await queries.users_of(connection, {chat[i]: arrivals[i].latin for i in fresh}) if fresh else {}
        said = await checks  # asked of Redis while the statements above ran
        backlog = said.backlog + turns_before

        passing = []
        for i in fresh:
            rejected = self._rejection(arrivals[i], said.verdicts.get(id(arrivals[i])), users[chat[i]].language)
            if rejected is None:
                passing.append(i)
            else:
                outcomes[i] = rejected
        known = {users[chat[i]].id for i in passing if not users[chat[i]].created}
        conversations = await queries.active_conversations(connection, known) if known else {}

        started: list[int] = []  # a new conversation: no earlier turns to look up, nothing else waiting
        joined: list[tuple[int, int]] = []  # (arrival, conversation) for the turn after the one in flight
        follow_ups: list[tuple[int, int]] = []  # the next turn of a conversation
        latin_changed: list[tuple[int, bool | None]] = []
        for i in passing:
            user, conversation = users[chat[i]], conversations.get(users[chat[i]].id)
            if conversation is not None and conversation.in_flight_request_id is not None:
                joined.append((i, conversation.id))
            elif backlog >= self.settings.backlog_limit:
                outcomes[i] = _rejected(T.BUSY, "busy", {}, user.language)
                continue
            else:
                backlog += 1
                if conversation is None:
                    started.append(i)
                else:
                    follow_ups.append((i, conversation.id))
            if user.writes_latin != arrivals[i].latin:
                latin_changed.append((user.id, arrivals[i].latin))
        if latin_changed:
            await queries.set_writes_latin(connection, latin_changed)
        started_in: list[int] = []
        if started:
            started_in = await queries.new_conversations(
                connection, [(users[chat[i]].id, request_ids[i]) for i in started]
            )
        firsts = [_user_message(arrivals[i], c, request_ids[i]) for i, c in zip(started, started_in, strict=True)]
        waiting = [_user_message(arrivals[i], c, None) for i, c in (*joined, *follow_ups)]
        if firsts or waiting:
            await queries.add_user_messages(connection, [*firsts, *waiting])

        turns = {
            i: self._turn(request_ids[i], c, arrivals[i].inbound.channel, [ChatMessage("user", m.text)], m.created_at)
            for i, c, m in zip(started, started_in, firsts, strict=True)
        }
        if turns:
            requests = [self._new_request(turns[i], m.created_at) for i, m in zip(started, firsts, strict=True)]
            await queries.add_requests(connection, requests)
        if follow_ups:
            wanted = [(c, arrivals[i].inbound.channel, request_ids[i]) for i, c in follow_ups]
            turns.update(zip((i for i, _ in follow_ups), await self._new_turns(connection, wanted), strict=True))
        for i, turn in turns.items():
            outcomes[i] = _Done(Accepted(Outcome.QUEUED, users[chat[i]].language, request_id=turn.request_id), turn)
        for i, _ in joined:
            outcomes[i] = _Done(Accepted(Outcome.JOINED, users[chat[i]].language))
        return [outcomes[i] for i in range(len(arrivals))]

    async def _duplicate(self, connection: AsyncConnection, inbound: Inbound) -> _Done:
        """A retried update: nothing new is stored, but a turn it stored and could not enqueue is enqueued now."""
        assert inbound.dedup_key is not None
        language = await queries.language_of(connection, inbound.channel, inbound.address)
        payload = await queries.stranded_payload(connection, inbound.channel, inbound.dedup_key)
        stranded = TurnRequest.from_json(payload) if payload is not None else None
        if stranded is not None and stranded.request_id in self._unmarked:  # in the stream, its mark on its way
            stranded = None
        return _Done(Accepted(Outcome.DUPLICATE, language), stranded=stranded)

    @staticmethod
    def _rejection(arrival: _Arrival, verdict: Verdict | None, language: str) -> _Done | None:
        if arrival.rejection is not None:
            return _rejected(*arrival.rejection, language)
        if verdict is Verdict.QUOTA:
            return _rejected(T.QUOTA, "quota", {}, language)
        if verdict is Verdict.RATE_LIMITED:
            return _rejected(T.RATE_LIMITED, "rate_limited", {}, language)
        return None

    async def _new_turns(
        self, connection: AsyncConnection, wanted: Sequence[tuple[int, str, str | None]]
    ) -> list[TurnRequest]:
        """Make the next turn of each conversation (id, channel, request id or None for a new one) of the user
        messages waiting in it, store it and mark it in flight: four statements, however many conversations."""
        request_ids = {c: request_id or str(uuid.uuid4()) for c, _, request_id in wanted}
        waiting = await queries.start_turns(connection, request_ids)
        histories = await queries.histories(connection, request_ids)
        turns: list[TurnRequest] = []
        stored: list[queries.NewRequest] = []
        for conversation_id, channel, _ in wanted:
            received_at = min(created_at for created_at, _ in waiting[conversation_id])
            history = [ChatMessage(role.value, body) for role, body in histories[conversation_id]]
            turn = self._turn(request_ids[conversation_id], conversation_id, channel, history, received_at)
            turns.append(turn)
            stored.append(self._new_request(turn, received_at))
        await queries.add_requests(connection, stored)
        return turns

    def _turn(
        self, request_id: str, conversation_id: int, channel: str, turns: list[ChatMessage], received_at: datetime
    ) -> TurnRequest:
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
        return TurnRequest(
            request_id=request_id,
            conversation_id=conversation_id,
            channel=channel,
            reply_stream=options.reply_stream or self.queue.names.replies(channel),
            messages=messages,
            deadline=time.time() + self.settings.request_deadline_seconds,
            max_tokens=options.max_tokens,
            created_at=received_at.timestamp(),
            char_budget=options.char_budget,
            model=model_for(self.settings, conversation_id),
            stream_partials=options.stream_partials,
        )

    def _new_request(self, turn: TurnRequest, received_at: datetime) -> queries.NewRequest:
        return queries.NewRequest(
            id=turn.request_id,
            conversation_id=turn.conversation_id,
            payload=turn.to_json(),
            reply_stream=turn.reply_stream,
            received_at=received_at,
            deadline=datetime.fromtimestamp(turn.deadline, UTC),
            model=turn.model,
            prompt_version=self.prompt_version,
        )

    async def _enqueue_batch(self, outcomes: list[_Done | BaseException]) -> None:
        """Put the committed batch's turns into the stream, in one pipeline, then mark them QUEUED.

        Stored first (PENDING_ENQUEUE), enqueued second: a turn in the stream always has its row. When Redis
        fails, the turns stay PENDING_ENQUEUE and their callers fail too (a webhook answers 5xx, so Telegram
        retries; the housekeeping loop enqueues them meanwhile). A process that dies between the two leaves
        them PENDING_ENQUEUE too, for the housekeeping of any bot process to enqueue within seconds.
        """
        done = [(i, o) for i, o in enumerate(outcomes) if isinstance(o, _Done) and (o.turn or o.stranded)]
        if not done:
            return
        turns = [t for _, o in done for t in (o.turn, o.stranded) if t is not None]
        try:
            await self.queue.enqueue_many(turns)
        except Exception as exc:
            for i, _ in done:
                outcomes[i] = exc
            return
        self._mark_queued([t.request_id for t in turns])

    async def _enqueue_many(self, turns: list[TurnRequest]) -> None:
        """Put turns stored as PENDING_ENQUEUE into the stream and mark them QUEUED (as ``_enqueue_batch``)."""
        await self.queue.enqueue_many(turns)
        self._mark_queued([t.request_id for t in turns])

    def _mark_queued(self, request_ids: list[str]) -> None:
        """Mark turns that are in the stream QUEUED, off the callers' path: the marks of the batches of a moment
        share one statement and one transaction. A turn left PENDING_ENQUEUE (a crash first, a failed mark) is
        only enqueued once more by housekeeping, and its answer still sent once: whoever claims it in SQL."""
        self._unmarked.update(request_ids)
        task = asyncio.create_task(self.marks.submit(request_ids))
        self._marking.add(task)
        task.add_done_callback(self._marked)

    def _marked(self, task: asyncio.Task[None]) -> None:
        self._marking.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.info("turns left PENDING_ENQUEUE for housekeeping: %r", task.exception())

    async def _mark_batch(self, batches: Sequence[list[str]]) -> list[None]:
        request_ids = [request_id for batch in batches for request_id in batch]
        try:
            await self._set_states(request_ids, RequestState.PENDING_ENQUEUE, RequestState.QUEUED)
        finally:
            self._unmarked.difference_update(request_ids)
        return [None] * len(batches)

    async def settle(self) -> None:
        """Let the QUEUED marks on their way land (a moment at most)."""
        if self._marking:
            await asyncio.wait(set(self._marking), timeout=QUEUED_MARK_LINGER_SECONDS + 5)

    async def _set_states(self, request_ids: list[str], old: RequestState, new: RequestState) -> list[str]:
        if not request_ids:
            return []
        async with self.engine.begin() as connection:
            return await queries.set_states(connection, request_ids, old, new)

    # Delivery side

    async def claim_final(self, request_id: str, lease_seconds: float = 60.0) -> Target | None:
        """Take the right to send the final reply of ``request_id``; None when it was answered already.

        Raises ``DeliveryInProgress`` while another claim holds it: the caller must retry later rather than
        drop the reply, since that claim may belong to a process that died mid-send. Such a claim is taken over
        after ``lease_seconds``. Claims made at the same moment share one transaction.
        """
        return await self.claims.submit((request_id, lease_seconds))

    async def _claim_batch(self, claims: Sequence[tuple[str, float]]) -> list[Target | BaseException | None]:
        return await self._together_or_one_by_one(claims, self._claim_set)

    async def _claim_set(
        self, connection: AsyncConnection, claims: Sequence[tuple[str, float]]
    ) -> list[Target | BaseException | None]:
        """Claims made together, one statement per lease asked for (usually one): a request claimed twice in the
        batch is the first claim's, and the second finds it in progress."""
        now = utcnow()
        claimed: dict[str, queries.TargetRow] = {}
        for lease_seconds in sorted({lease for _, lease in claims}):
            ids = sorted({rid for rid, lease in claims if lease == lease_seconds} - claimed.keys())
            claimed.update(await queries.claim_deliveries(connection, ids, now - timedelta(seconds=lease_seconds)))
        unclaimed = sorted({rid for rid, _ in claims} - claimed.keys())
        states = await queries.states_of(connection, unclaimed) if unclaimed else {}
        outcomes: list[Target | BaseException | None] = []
        taken: set[str] = set()
        for request_id, _ in claims:
            row = claimed.pop(request_id, None)
            if row is not None:
                taken.add(request_id)
                outcomes.append(_target(request_id, row))
            elif request_id in taken or states.get(request_id) is RequestState.DELIVERING:
                outcomes.append(DeliveryInProgress(request_id))
            else:
                outcomes.append(None)  # answered already, or forgotten
        return outcomes

    async def target(self, request_id: str) -> Target | None:
        """Where partial replies of an open request go; None when the request is finished or unknown. The
        first previews of many answers come at once: their lookups share one statement."""
        return await self.lookups.submit(request_id)

    async def _target_batch(self, request_ids: Sequence[str]) -> list[Target | None]:
        async with self.engine.connect() as connection:
            found = await queries.targets(connection, sorted(set(request_ids)), open_only=True)
        return [_target(request_id, found.get(request_id)) for request_id in request_ids]

    async def finish(self, event: ReplyEvent, delivered_text: str, external_id: str | None = None) -> None:
        """Record how a turn ended, free its conversation and queue the messages that arrived meanwhile.
        Turns that end at the same moment are recorded in one transaction, their next turns in one pipeline."""
        await self.finishes.submit((event, delivered_text, external_id))

    async def _finish_batch(self, ends: Sequence[tuple[ReplyEvent, str, str | None]]) -> list[BaseException | None]:
        """Record turns that ended together, and enqueue the next turns of their conversations in one pipeline."""
        results = await self._together_or_one_by_one(ends, self._finish_set)
        outcomes = [result if isinstance(result, BaseException) else None for result in results]
        next_turns = {i: result for i, result in enumerate(results) if isinstance(result, TurnRequest)}
        if next_turns:
            try:
                await self._enqueue_many(list(next_turns.values()))
            except Exception as exc:
                for i in next_turns:
                    outcomes[i] = exc
        return outcomes

    async def _finish_set(
        self, connection: AsyncConnection, ends: Sequence[tuple[ReplyEvent, str, str | None]]
    ) -> list[TurnRequest | None]:
        """Record ``ends`` (one statement per table, whatever their number): each request's state, the answers,
        and the conversations whose turn ended freed or given their next turn. Each end's next turn, if any."""
        now = utcnow()
        first: dict[str, int] = {}  # a turn recorded twice in one batch counts once, as it would one by one
        for i, (event, _, _) in enumerate(ends):
            first.setdefault(event.request_id, i)
        ended: dict[str, queries.EndedRequest] = {}
        for state in {_ENDED_AS[ends[i][0].kind] for i in first.values()}:
            ids = [rid for rid, i in first.items() if _ENDED_AS[ends[i][0].kind] is state]
            ended.update(await queries.end_requests(connection, ids, state, now))
        answers = []
        for request_id, row in ended.items():
            event, delivered_text, external_id = ends[first[request_id]]
            if event.kind is ReplyKind.FINAL:
                answers.append(
                    queries.NewAnswer(
                        row.conversation_id,
                        request_id,
                        delivered_text,
                        event.model or row.model,
                        row.prompt_version,
                        event.prompt_tokens,
                        event.completion_tokens,
                        int((now - row.received_at).total_seconds() * 1000),
                        external_id,
                    )
                )
        if answers:
            await queries.add_answers(connection, answers)
        by_conversation: dict[int, set[str]] = {}
        for request_id, row in ended.items():
            by_conversation.setdefault(row.conversation_id, set()).add(request_id)
        next_turns: list[TurnRequest | None] = [None] * len(ends)
        if not by_conversation:
            return next_turns
        after = await queries.conversations_after_turns(connection, by_conversation)
        freed = [conversation_id for conversation_id, turn in after.items() if not turn.waiting]
        if freed:
            await queries.clear_in_flight(connection, freed)
        following = [(conversation_id, turn) for conversation_id, turn in after.items() if turn.waiting]
        if following:
            made = await self._new_turns(connection, [(c, turn.channel, None) for c, turn in following])
            for (_, turn), next_turn in zip(following, made, strict=True):
                next_turns[first[turn.request_id]] = next_turn
        return next_turns

    # Housekeeping, run periodically by the delivery loop

    async def overdue(self, reply_streams: Collection[str], grace_seconds: float) -> list[str]:
        """Queued requests answered into ``reply_streams`` and past their deadline (plus grace, for the worker's
        own notice to come first). Only the process reading those streams can tell these users."""
        limit = utcnow() - timedelta(seconds=grace_seconds)
        async with self.sessions() as session:
            rows = await session.scalars(
                select(Request.id)
                .where(
                    Request.state.in_([RequestState.QUEUED, RequestState.PENDING_ENQUEUE]),
                    Request.deadline < limit,
                    Request.reply_stream.in_(list(reply_streams)),
                )
                .limit(100)
            )
            return list(rows)

    async def enqueue_stranded(self, older_than_seconds: float = 5.0) -> int:
        """Enqueue turns that were stored but never reached the stream (Redis failed at that moment).

        Each is marked QUEUED before it is enqueued, so of several bot processes sweeping at once only one
        enqueues it; if Redis fails again, it goes back to PENDING_ENQUEUE for the next sweep.
        """
        async with self.engine.begin() as connection:
            payloads = await queries.claim_stranded(connection, utcnow() - timedelta(seconds=older_than_seconds))
        turns = [TurnRequest.from_json(payload) for payload in payloads]
        if turns:
            try:
                await self.queue.enqueue_many(turns)
            except Exception:
                with contextlib.suppress(Exception):
                    await self._set_states(
                        [t.request_id for t in turns], RequestState.QUEUED, RequestState.PENDING_ENQUEUE
                    )
                raise
        return len(turns)

    async def prune_keys(self, batch: int = 10_000) -> int:
        """Forget the ids of updates accepted longer ago than the retention (no channel retries that late), a
        batch per transaction so that accepts never wait long behind the delete: how many."""
        seen_before = utcnow() - timedelta(days=self.settings.inbound_key_retention_days)
        pruned = 0
        while True:
            async with self.engine.begin() as connection:
                count = await queries.prune_keys(connection, seen_before, batch)
            pruned += count
            if count < batch:
                return pruned

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


_ENDED_AS = {
    ReplyKind.FINAL: RequestState.ANSWERED,
    ReplyKind.EXPIRED: RequestState.EXPIRED,
    ReplyKind.FAILED: RequestState.FAILED,
}


def _target(request_id: str, row: queries.TargetRow | None) -> Target | None:
    if row is None:
        return None
    return Target(
        row.channel,
        row.address,
        row.language,
        request_id,
        row.conversation_id,
        row.received_at.timestamp(),
        row.model,
        latin=answers_in_latin(row.script, row.writes_latin),
    )


def redact(address: str) -> str:
    """An address for log lines: its last four characters, enough to correlate, never a whole phone number."""
    return address if len(address) <= 4 else f"…{address[-4:]}"
