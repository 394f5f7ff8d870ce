"""Who may talk to the bot: operators' blocks, and the allow-list of a pilot.

Checked for every message, so the rules (a few rows) are held in memory and read again from SQL every few
seconds: a block made through another bot process applies here within ``refresh_seconds``, one made here at
once. A blocked address gets one polite notice ever, then silence; an address outside a pilot's allow-list
is told once a day.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.limits import UserLimits
from bot.store.models import AccessRule, utcnow
from soro.settings import Settings

Rule = Literal["blocked", "allowed"]


class Access(enum.StrEnum):
    OK = "ok"
    BLOCKED = "blocked"
    NOT_ALLOWED = "not_allowed"


@dataclass(frozen=True)
class _Rules:
    blocked: frozenset[tuple[str, str]]
    allowed: frozenset[tuple[str, str]]
    loaded_at: float
    # Rows, blocked rows, allowed rows and the latest change: the same means nothing to read again. The counts
    # catch a change whose time, from a process with a slow clock, is not the latest.
    version: tuple[int, int, int, datetime | None]


def parse_address(raw: str) -> tuple[str, str] | None:
    """An operator's ``ID``: ``+992…`` is a phone (SMS), digits (or -digits) a Telegram chat, or ``channel:address``."""
    raw = raw.strip()
    if ":" in raw:
        channel, _, address = raw.partition(":")
        return (channel, address) if channel and address else None
    if raw.startswith("+") and raw[1:].isdigit():
        return "sms", raw
    if raw.lstrip("-").isdigit():
        return "telegram", raw
    return None


class AccessControl:
    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        limits: UserLimits,
        refresh_seconds: float = 5.0,
    ) -> None:
        self.sessions = sessions
        self.limits = limits
        self.configured = frozenset(settings.allow_list)
        self.operators = frozenset(str(i) for i in settings.operator_ids)
        self.refresh_seconds = refresh_seconds
        self._rules: _Rules | None = None
        self._loading = asyncio.Lock()

    async def decide(self, channel: str, address: str) -> Access:
        rules = await self._current()
        key = (channel, address)
        if channel == "telegram" and address in self.operators:
            return Access.OK
        if key in rules.blocked:
            return Access.BLOCKED
        if (self.configured or rules.allowed) and address not in self.configured and key not in rules.allowed:
            return Access.NOT_ALLOWED
        return Access.OK

    async def should_notify(self, channel: str, address: str, access: Access) -> bool:
        """Whether this refusal is the one that gets a notice (blocked: the first ever; not allowed: daily)."""
        if access is Access.NOT_ALLOWED:
            return await self.limits.first_today("access-not-allowed", f"{channel}:{address}")
        async with self.sessions() as session, session.begin():
            result = await session.execute(
                update(AccessRule)
                .where(AccessRule.channel == channel, AccessRule.address == address, AccessRule.notified.is_(False))
                .values(notified=True)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def set_rule(self, channel: str, address: str, rule: Rule, value: bool, by: str = "") -> None:
        """Block, unblock, allow or disallow ``address``; applies in this process at once."""
        values: dict[str, object] = {rule: value, "changed_by": by or None, "changed_at": utcnow()}
        if rule == "blocked":
            values["notified"] = False  # blocked again: one notice again
        async with self.sessions() as session, session.begin():
            row = await session.get(AccessRule, (channel, address), with_for_update=True)
            if row is None:
                try:
                    async with session.begin_nested():
                        session.add(AccessRule(channel=channel, address=address, **values))
                        await session.flush()
                except IntegrityError:  # made meanwhile by another process: update it instead
                    row = await session.get(AccessRule, (channel, address), with_for_update=True)
            if row is not None:
                for name, new in values.items():
                    setattr(row, name, new)
        self._rules = None

    async def _current(self) -> _Rules:
        rules = self._rules
        if rules is not None and time.monotonic() - rules.loaded_at < self.refresh_seconds:
            return rules
        async with self._loading:
            rules = self._rules
            if rules is not None and time.monotonic() - rules.loaded_at < self.refresh_seconds:
                return rules
            async with self.sessions() as session:
                count, blocked, allowed, latest = (
                    await session.execute(
                        select(
                            func.count(),
                            func.count().filter(AccessRule.blocked.is_(True)),
                            func.count().filter(AccessRule.allowed.is_(True)),
                            func.max(AccessRule.changed_at),
                        )
                    )
                ).one()
                version = (int(count), int(blocked), int(allowed), latest)
                if rules is not None and rules.version == version:  # a pilot's thousands of rules, unchanged
                    self._rules = rules = dataclasses.replace(rules, loaded_at=time.monotonic())
                    return rules
                rows = (
                    await session.execute(
                        select(AccessRule.channel, AccessRule.address, AccessRule.blocked, AccessRule.allowed).where(
                            AccessRule.blocked.is_(True) | AccessRule.allowed.is_(True)
                        )
                    )
                ).all()
            self._rules = rules = _Rules(
                blocked=frozenset((c, a) for c, a, blocked, _ in rows if blocked),
                allowed=frozenset((c, a) for c, a, _, allowed in rows if allowed),
                loaded_at=time.monotonic(),
                version=version,
            )
            return rules
