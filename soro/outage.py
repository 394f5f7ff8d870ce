"""Riding out a dependency (Redis, the database) that goes away and comes back.

A long-lived loop that calls a dependency wraps each round in ``Outages.watch``: a failure that means "the
dependency is away" is swallowed, logged once per outage (not once per retry), counted, shown in the
``soro_dependency_up`` gauge, and the loop waits with capped exponential back-off before its next round. The
first successful round after an outage logs how long it lasted. Anything else (a bug) propagates.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from redis.exceptions import BusyLoadingError, ReadOnlyError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from soro.metrics import DEPENDENCIES, DependencyMetrics

log = logging.getLogger(__name__)

REDIS, DATABASE = DEPENDENCIES

_REDIS_AWAY = (RedisConnectionError, RedisTimeoutError, BusyLoadingError, TryAgainError, ReadOnlyError)
_SQL_AWAY = {"OperationalError", "InterfaceError", "TimeoutError", "DisconnectionError"}


def dependency_of(exc: BaseException, uses: tuple[str, ...] = DEPENDENCIES) -> str | None:
    """Which of ``uses`` ``exc`` says is away, or None when it is not an outage (a bug, bad input)."""
    if isinstance(exc, _REDIS_AWAY):
        return REDIS if REDIS in uses else None
    if DATABASE not in uses:
        return None
    # By name, so that processes without a database (the worker) need not import SQLAlchemy.
    names = {cls.__name__ for cls in type(exc).__mro__ if cls.__module__.startswith("sqlalchemy")}
    if names & _SQL_AWAY or getattr(exc, "connection_invalidated", False):
        return DATABASE
    # asyncpg raises plain OSError subclasses (refused, reset) while it connects, unwrapped by SQLAlchemy.
    if isinstance(exc, OSError | TimeoutError):
        return DATABASE
    return None


@dataclass
class _Outage:
    started: float
    failures: int = 0


@dataclass
class Outages:
    """The outage state of one process: shared by all its loops, so an outage is logged once."""

    metrics: DependencyMetrics
    first_delay: float = 0.2
    max_delay: float = 5.0
    current: dict[str, _Outage] = field(default_factory=dict)

    def failed(self, dependency: str, exc: BaseException, where: str) -> float:
        """Record a failure; returns how long the caller should wait before trying again."""
        outage = self.current.get(dependency)
        if outage is None:
            outage = self.current[dependency] = _Outage(time.monotonic())
            self.metrics.up.labels(dependency).set(0)
            self.metrics.outages.labels(dependency).inc()
            log.warning("%s is unreachable (%s in %s); retrying with back-off", dependency, type(exc).__name__, where)
        outage.failures += 1
        return min(self.max_delay, self.first_delay * 2.0 ** min(outage.failures - 1, 30))

    def succeeded(self, uses: tuple[str, ...] = DEPENDENCIES) -> None:
        """A round that used ``uses`` went through: they are back."""
        for name in uses:
            outage = self.current.pop(name, None)
            if outage is not None:
                self.metrics.up.labels(name).set(1)
                log.warning("%s is back after %.1f s", name, time.monotonic() - outage.started)

    def down(self, dependency: str) -> bool:
        return dependency in self.current

    @contextlib.asynccontextmanager
    async def watch(self, where: str, uses: tuple[str, ...], stop: asyncio.Event | None = None) -> AsyncIterator[None]:
        """One round of a loop that calls ``uses``: an outage of one of them is recorded and waited out (or until
        ``stop``); a round that goes through ends their outages. Other errors propagate."""
        try:
            yield
        except Exception as exc:
            dependency = dependency_of(exc, uses)
            if dependency is None:
                raise
            await pause(self.failed(dependency, exc, where), stop)
        else:
            if self.current:
                self.succeeded(uses)


async def pause(seconds: float, stop: asyncio.Event | None = None) -> None:
    """Sleep, but wake as soon as ``stop`` is set."""
    if stop is None:
        await asyncio.sleep(seconds)
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
