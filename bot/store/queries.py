"""The statements of the message path, as SQLAlchemy Core on one connection: one round trip each, no ORM.

Accepting a message and recording an answer run these many times a second; the ORM's identity map, flushes and
per-object bookkeeping cost more CPU than the statements themselves. Commands (``/forget``, language) keep
the ORM in ``bot.pipeline``: they are rare.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import Table, bindparam, case, delete, func, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.store.models import Conversation, InboundKey, Message, Request, RequestState, Role, User, utcnow

users = cast(Table, User.__table__)
conversations = cast(Table, Conversation.__table__)
messages = cast(Table, Message.__table__)
requests = cast(Table, Request.__table__)
inbound_keys = cast(Table, InboundKey.__table__)

OPEN = (RequestState.PENDING_ENQUEUE, RequestState.QUEUED, RequestState.DELIVERING)
WAITING_FOR_ANSWER = (RequestState.PENDING_ENQUEUE, RequestState.QUEUED)
HISTORY_LIMIT = 200


class ActiveConversation(NamedTuple):
    id: int
    in_flight_request_id: str | None


class UserRow(NamedTuple):
    id: int
    language: str
    writes_latin: bool | None
    created: bool = False  # by this transaction: it has no conversations yet


class TargetRow(NamedTuple):
    channel: str
    address: str
    language: str
    conversation_id: int
    received_at: datetime
    model: str | None
    script: str | None
    writes_latin: bool | None


# The columns of a TargetRow, in its order.
_TARGET = (
    users.c.channel,
    users.c.address,
    users.c.language,
    requests.c.conversation_id,
    requests.c.received_at,
    requests.c.model,
    users.c.script,
    users.c.writes_latin,
)


class EndedRequest(NamedTuple):
    conversation_id: int
    received_at: datetime
    model: str | None
    prompt_version: str | None


def _insert(connection: AsyncConnection, table: Table) -> Any:
    """INSERT with ``on_conflict_do_nothing``, in the connection's dialect."""
    return (postgresql_insert if connection.dialect.name == "postgresql" else sqlite_insert)(table)


# The statements of the message path are built once, with bound parameters: building one costs more CPU than
# running it (clause construction and its cache key), many times a second. A batch of messages that arrived
# together takes one statement per table, whatever its size.
_ADD_MESSAGE = messages.insert()
_ADD_REQUEST = requests.insert()
_SET_IN_FLIGHT = (
    update(conversations)
    .where(conversations.c.id == bindparam("conversation_id"))
    .values(in_flight_request_id=bindparam("request_id"))
)
_SET_WRITES_LATIN = update(users).where(users.c.id == bindparam("user_id")).values(writes_latin=bindparam("latin"))
# Both columns of the (channel, address) key: on the address alone PostgreSQL reads the whole index.
_USERS_AT = select(users.c.id, users.c.channel, users.c.address, users.c.language, users.c.writes_latin).where(
    users.c.channel.in_(bindparam("channels", expanding=True)),
    users.c.address.in_(bindparam("addresses", expanding=True)),
)
_ACTIVE_CONVERSATIONS = (
    select(conversations.c.user_id, conversations.c.id, conversations.c.in_flight_request_id)
    .where(conversations.c.user_id.in_(bindparam("user_ids", expanding=True)), conversations.c.active.is_(True))
    # Locked in one order, the order in which finishing turns lock them too: no two transactions wait in a ring.
    .order_by(conversations.c.id)
    .with_for_update()
)
_SET_STATES = (
    update(requests)
    .where(
        requests.c.id.in_(bindparam("ids", expanding=True)),
        requests.c.state == bindparam("old", type_=requests.c.state.type),
    )
    .values(state=bindparam("new", type_=requests.c.state.type), state_changed_at=bindparam("now"))
    .returning(requests.c.id)
)
_NEW_CONVERSATIONS = conversations.insert().returning(conversations.c.id, sort_by_parameter_order=True)
_by_dialect: dict[tuple[str, str], Any] = {}


def _on_conflict_nothing(connection: AsyncConnection, name: str, table: Table, *returning: Any) -> Any:
    """``INSERT … ON CONFLICT DO NOTHING RETURNING …`` for this dialect, built once."""
    key = (connection.dialect.name, name)
    if key not in _by_dialect:
        _by_dialect[key] = _insert(connection, table).on_conflict_do_nothing().returning(*returning)
    return _by_dialect[key]


async def claim_keys(connection: AsyncConnection, keys: Sequence[tuple[str, str, str]]) -> set[tuple[str, str]]:
    """Record inbound keys (channel, key, the turn it may start) in one statement: the (channel, key) pairs that
    were new."""
    statement = _on_conflict_nothing(connection, "keys", inbound_keys, inbound_keys.c.channel, inbound_keys.c.key)
    now = utcnow()
    values = [{"channel": channel, "key": key, "request_id": request, "seen_at": now} for channel, key, request in keys]
    return {(row[0], row[1]) for row in await connection.execute(statement, values)}


async def stranded_payload(connection: AsyncConnection, channel: str, key: str) -> str | None:
    """The turn a retried update stored but could not enqueue (still PENDING_ENQUEUE), as enqueued JSON."""
    statement = (
        select(requests.c.payload)
        .join(inbound_keys, inbound_keys.c.request_id == requests.c.id)
        .where(
            inbound_keys.c.channel == channel,
            inbound_keys.c.key == key,
            requests.c.state == RequestState.PENDING_ENQUEUE,
        )
    )
    return cast(str | None, await connection.scalar(statement))


async def language_of(connection: AsyncConnection, channel: str, address: str) -> str:
    statement = select(users.c.language).where(users.c.channel == channel, users.c.address == address)
    return cast(str | None, await connection.scalar(statement)) or "tg"


async def users_of(
    connection: AsyncConnection, wanted: Mapping[tuple[str, str], bool | None]
) -> dict[tuple[str, str], UserRow]:
    """The users at these (channel, address) pairs, those not yet known created with how they write (the
    value of each pair): two statements for a batch of new users, one for known ones."""

    async def known() -> dict[tuple[str, str], UserRow]:
        channels, addresses = sorted({channel for channel, _ in wanted}), sorted({address for _, address in wanted})
        rows = await connection.execute(_USERS_AT, {"channels": channels, "addresses": addresses})
        return {(row[1], row[2]): UserRow(row[0], row[3], row[4]) for row in rows if (row[1], row[2]) in wanted}

    found = await known()
    missing = sorted(pair for pair in wanted if pair not in found)  # one order: concurrent batches never deadlock
    if missing:
        created = _on_conflict_nothing(connection, "users", users, users.c.id, users.c.channel, users.c.address)
        now = utcnow()
        values = [
            {
                "channel": channel,
                "address": address,
                "language": "tg",
                "writes_latin": wanted[channel, address],
                "opted_out": False,
                "created_at": now,
            }
            for channel, address in missing
        ]
        rows = (await connection.execute(created, values)).all()
        found.update({(row[1], row[2]): UserRow(row[0], "tg", wanted[row[1], row[2]], created=True) for row in rows})
        if len(rows) < len(missing):  # created meanwhile by another process's update of the same user
            found = await known()
    return found


async def active_conversations(connection: AsyncConnection, user_ids: Collection[int]) -> dict[int, ActiveConversation]:
    """Each user's active conversation, locked until the transaction ends (PostgreSQL)."""
    rows = await connection.execute(_ACTIVE_CONVERSATIONS, {"user_ids": sorted(user_ids)})
    return {row[0]: ActiveConversation(row[1], row[2]) for row in rows}  # ascending ids: the newest one wins


async def new_conversations(connection: AsyncConnection, started: Sequence[tuple[int, str]]) -> list[int]:
    """Start a conversation for each (user id, its first turn), in one statement: their ids, in that order."""
    now = utcnow()
    values = [
        {"user_id": user_id, "active": True, "in_flight_request_id": request_id, "started_at": now}
        for user_id, request_id in started
    ]
    return [int(row[0]) for row in await connection.execute(_NEW_CONVERSATIONS, values)]


async def set_writes_latin(connection: AsyncConnection, changed: Sequence[tuple[int, bool | None]]) -> None:
    await connection.execute(_SET_WRITES_LATIN, [{"user_id": user_id, "latin": latin} for user_id, latin in changed])


class NewUserMessage(NamedTuple):
    conversation_id: int
    text: str  # as the model reads it
    typed_text: str | None  # as the user typed it, when that differs
    created_at: datetime
    request_id: str | None  # the turn it belongs to; None while it waits for the next one


async def add_user_messages(connection: AsyncConnection, added: Sequence[NewUserMessage]) -> None:
    await connection.execute(_ADD_MESSAGE, [{**message._asdict(), "role": Role.USER} for message in added])


# The user messages waiting in each conversation go to its turn in flight, set just before by ``start_turns``:
# so one statement, built once, gives any number of conversations their own turn.
_TAKE_WAITING = (
    update(messages)
    .where(
        messages.c.conversation_id.in_(bindparam("conversation_ids", expanding=True)),
        messages.c.role == Role.USER,
        messages.c.request_id.is_(None),
    )
    .values(
        request_id=select(conversations.c.in_flight_request_id)
        .where(conversations.c.id == messages.c.conversation_id)
        .scalar_subquery()
    )
    .returning(messages.c.conversation_id, messages.c.created_at, messages.c.text)
)
# Turn by turn: a message that arrived while a turn was in flight belongs after that turn's answer.
_NEWEST_FIRST = func.row_number().over(
    partition_by=messages.c.conversation_id,
    order_by=(
        func.coalesce(requests.c.received_at, messages.c.created_at).desc(),
        case((messages.c.role == Role.USER, 0), else_=1).desc(),
        messages.c.id.desc(),
    ),
)
_RANKED = (
    select(messages.c.conversation_id, messages.c.role, messages.c.text, _NEWEST_FIRST.label("rank"))
    .join(requests, requests.c.id == messages.c.request_id, isouter=True)
    .where(
        messages.c.conversation_id.in_(bindparam("conversation_ids", expanding=True)),
        messages.c.request_id.is_not(None),
    )
    .subquery()
)
_HISTORIES = (
    select(_RANKED.c.conversation_id, _RANKED.c.role, _RANKED.c.text)
    .where(_RANKED.c.rank <= HISTORY_LIMIT)
    .order_by(_RANKED.c.conversation_id, _RANKED.c.rank.desc())
)


async def start_turns(connection: AsyncConnection, turns: Mapping[int, str]) -> dict[int, list[tuple[datetime, str]]]:
    """Mark each conversation's next turn in flight (conversation id → request id) and give it the user messages
    waiting in the conversation, in two statements: their (time, text), by conversation."""
    await connection.execute(
        _SET_IN_FLIGHT, [{"conversation_id": c, "request_id": r} for c, r in sorted(turns.items())]
    )
    taken: dict[int, list[tuple[datetime, str]]] = {}
    for row in await connection.execute(_TAKE_WAITING, {"conversation_ids": sorted(turns)}):
        taken.setdefault(row[0], []).append((row[1], row[2]))
    return taken


async def histories(
    connection: AsyncConnection, conversation_ids: Collection[int]
) -> dict[int, list[tuple[Role, str]]]:
    """Each conversation's answered turns (the last ``HISTORY_LIMIT`` messages), oldest first, in one statement."""
    found: dict[int, list[tuple[Role, str]]] = {conversation_id: [] for conversation_id in conversation_ids}
    for row in await connection.execute(_HISTORIES, {"conversation_ids": sorted(conversation_ids)}):
        found[row[0]].append((row[1], row[2]))
    return found


class NewRequest(NamedTuple):
    id: str
    conversation_id: int
    payload: str  # the turn as enqueued
    reply_stream: str
    received_at: datetime
    deadline: datetime
    model: str | None
    prompt_version: str | None


async def add_requests(connection: AsyncConnection, added: Sequence[NewRequest]) -> None:
    # Stored before they are enqueued: PENDING_ENQUEUE until the XADD is known to have happened, so a process
    # killed in between leaves turns that housekeeping enqueues within seconds, not ones that wait for their
    # deadline (marked QUEUED by ``set_states`` once they are in the stream).
    now = utcnow()
    values = [
        {**request._asdict(), "state": RequestState.PENDING_ENQUEUE, "state_changed_at": now} for request in added
    ]
    await connection.execute(_ADD_REQUEST, values)


async def set_states(
    connection: AsyncConnection, request_ids: list[str], old: RequestState, new: RequestState
) -> list[str]:
    """Move requests from ``old`` to ``new``; the ids that were in ``old``."""
    parameters = {"ids": request_ids, "old": old, "new": new, "now": utcnow()}
    return [row[0] for row in await connection.execute(_SET_STATES, parameters)]


async def claim_stranded(connection: AsyncConnection, older_than: datetime, limit: int = 100) -> list[str]:
    """Take turns stuck in PENDING_ENQUEUE for enqueueing (marked QUEUED): their payloads. Several processes
    may sweep at once; each turn goes to one of them."""
    candidates = (
        select(requests.c.id)
        .where(requests.c.state == RequestState.PENDING_ENQUEUE, requests.c.state_changed_at < older_than)
        .limit(limit)
    )
    ids = [row[0] for row in await connection.execute(candidates)]
    if not ids:
        return []
    statement = (
        update(requests)
        .where(requests.c.id.in_(ids), requests.c.state == RequestState.PENDING_ENQUEUE)
        .values(state=RequestState.QUEUED, state_changed_at=utcnow())
        .returning(requests.c.payload)
    )
    return [row[0] for row in await connection.execute(statement)]


async def prune_keys(connection: AsyncConnection, seen_before: datetime, limit: int) -> int:
    """Forget up to ``limit`` inbound keys seen before ``seen_before``: how many."""
    old = select(inbound_keys.c.channel, inbound_keys.c.key).where(inbound_keys.c.seen_at < seen_before).limit(limit)
    statement = delete(inbound_keys).where(tuple_(inbound_keys.c.channel, inbound_keys.c.key).in_(old))
    return (await connection.execute(statement)).rowcount


async def queued_turns(
    connection: AsyncConnection, marked_before: datetime, deadline_after: datetime, limit: int
) -> list[tuple[str, str]]:
    """Turns SQL holds to be in the stream (QUEUED, marked before ``marked_before``, deadline still ahead):
    their ids and payloads."""
    statement = (
        select(requests.c.id, requests.c.payload)
        .where(
            requests.c.state == RequestState.QUEUED,
            requests.c.state_changed_at < marked_before,
            requests.c.deadline > deadline_after,
        )
        .limit(limit)
    )
    return [(row[0], row[1]) for row in await connection.execute(statement)]


_TARGETS_OF = (
    select(*_TARGET, requests.c.id)
    .join(conversations, conversations.c.id == requests.c.conversation_id)
    .join(users, users.c.id == conversations.c.user_id)
    .where(requests.c.id.in_(bindparam("request_ids", expanding=True)))
)
_OPEN_TARGETS = _TARGETS_OF.where(requests.c.state.in_(WAITING_FOR_ANSWER))
_STATES_OF = select(requests.c.id, requests.c.state).where(requests.c.id.in_(bindparam("request_ids", expanding=True)))
_CLAIMS = (
    update(requests)
    .where(
        requests.c.id.in_(bindparam("request_ids", expanding=True)),
        requests.c.state.in_(WAITING_FOR_ANSWER)
        | ((requests.c.state == RequestState.DELIVERING) & (requests.c.state_changed_at < bindparam("stale_before"))),
    )
    .values(state=RequestState.DELIVERING, state_changed_at=bindparam("now"))
)
# On PostgreSQL the claim reads its targets too; SQLite's RETURNING names only the table it updates.
_CLAIMS_WITH_TARGETS = _CLAIMS.where(
    requests.c.conversation_id == conversations.c.id, conversations.c.user_id == users.c.id
).returning(*_TARGET, requests.c.id)
_CLAIMED_IDS = _CLAIMS.returning(requests.c.id)


async def targets(
    connection: AsyncConnection, request_ids: Sequence[str], open_only: bool = False
) -> dict[str, TargetRow]:
    """Where the replies to ``request_ids`` go, by request id; with ``open_only``, only of those still waiting
    for their answer."""
    rows = await connection.execute(_OPEN_TARGETS if open_only else _TARGETS_OF, {"request_ids": list(request_ids)})
    return {row[-1]: TargetRow(*row[:-1]) for row in rows}


async def claim_deliveries(
    connection: AsyncConnection, request_ids: Sequence[str], stale_before: datetime
) -> dict[str, TargetRow]:
    """Mark requests DELIVERING, except those answered already or held by a live claim (changed after
    ``stale_before``): where the replies of the claimed ones go, by request id."""
    values = {"request_ids": list(request_ids), "stale_before": stale_before, "now": utcnow()}
    if connection.dialect.name == "postgresql":
        rows = await connection.execute(_CLAIMS_WITH_TARGETS, values)
        return {row[-1]: TargetRow(*row[:-1]) for row in rows}
    claimed = [row[0] for row in await connection.execute(_CLAIMED_IDS, values)]
    return await targets(connection, claimed) if claimed else {}


async def states_of(connection: AsyncConnection, request_ids: Sequence[str]) -> dict[str, RequestState]:
    rows = await connection.execute(_STATES_OF, {"request_ids": list(request_ids)})
    return {row[0]: row[1] for row in rows}


_END_REQUESTS = (
    update(requests)
    .where(requests.c.id.in_(bindparam("request_ids", expanding=True)), requests.c.state.in_(OPEN))
    .values(
        state=bindparam("state", type_=requests.c.state.type),
        finished_at=bindparam("finished_at"),
        state_changed_at=bindparam("changed_at"),
    )
    .returning(
        requests.c.id, requests.c.conversation_id, requests.c.received_at, requests.c.model, requests.c.prompt_version
    )
)
_TURNS_IN_FLIGHT = (
    select(conversations.c.id, conversations.c.in_flight_request_id, conversations.c.active, users.c.channel)
    .join(users, users.c.id == conversations.c.user_id)
    .where(conversations.c.id.in_(bindparam("conversation_ids", expanding=True)))
    .order_by(conversations.c.id)  # the order in which accepts lock them too
    .with_for_update(of=conversations)
)
_WAITING_IN = (
    select(messages.c.conversation_id)
    .distinct()
    .where(
        messages.c.conversation_id.in_(bindparam("conversation_ids", expanding=True)),
        messages.c.role == Role.USER,
        messages.c.request_id.is_(None),
    )
)
_CLEAR_IN_FLIGHT = (
    update(conversations)
    .where(conversations.c.id.in_(bindparam("conversation_ids", expanding=True)))
    .values(in_flight_request_id=None)
)


async def end_requests(
    connection: AsyncConnection, request_ids: Sequence[str], state: RequestState, now: datetime
) -> dict[str, EndedRequest]:
    """Record how open requests ended, by request id; those recorded already (or unknown) are left out."""
    values = {"request_ids": list(request_ids), "state": state, "finished_at": now, "changed_at": now}
    return {row[0]: EndedRequest(*row[1:]) for row in await connection.execute(_END_REQUESTS, values)}


class NewAnswer(NamedTuple):
    conversation_id: int
    request_id: str
    text: str
    model: str | None
    prompt_version: str | None
    prompt_tokens: int
    completion_tokens: int
    latency_ms: int
    external_id: str | None


async def add_answers(connection: AsyncConnection, added: Sequence[NewAnswer]) -> None:
    now = utcnow()
    values = [
        {**answer._asdict(), "role": Role.ASSISTANT, "answer_of": answer.request_id, "created_at": now}
        for answer in added
    ]
    await connection.execute(_ADD_MESSAGE, values)


class AfterTurn(NamedTuple):
    request_id: str  # the turn that was in flight, and has ended
    channel: str  # the user's
    waiting: bool  # messages wait for the next turn of an active conversation


async def conversations_after_turns(
    connection: AsyncConnection, ended: Mapping[int, Collection[str]]
) -> dict[int, AfterTurn]:
    """Of the conversations whose turn in flight is among ``ended[conversation_id]`` (locked): what follows."""
    rows = [
        row
        for row in await connection.execute(_TURNS_IN_FLIGHT, {"conversation_ids": sorted(ended)})
        if row[1] in ended[row[0]]
    ]
    active = [row[0] for row in rows if row[2]]
    waiting = set((await connection.scalars(_WAITING_IN, {"conversation_ids": active})).all()) if active else set()
    return {row[0]: AfterTurn(row[1], str(row[3]), row[0] in waiting) for row in rows}


async def clear_in_flight(connection: AsyncConnection, conversation_ids: Collection[int]) -> None:
    await connection.execute(_CLEAR_IN_FLIGHT, {"conversation_ids": list(conversation_ids)})
