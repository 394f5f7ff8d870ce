"""Redis and the database come and go: loops back off, and say so once per outage, not once per retry.

One ``Outages`` per process (``outages(metrics.dependencies, "worker", [REDIS])`` gives every loop of a
process the same one; the list names what the process uses) knows which dependencies are down. The first failure of an outage writes one WARNING line and sets
``soro_dependency_up{dependency, process}`` to 0; retries only count ``soro_dependency_errors_total``; the first
success afterwards writes one line with the outage's length and sets the gauge back to 1.

A loop uses it in one of two ways::

    backoff = Backoff()
    while not stop.is_set():
        async with process_outages.guard(DATABASE, backoff=backoff, stop=stop):
            ...  # one pass; an outage is recorded, waited out (capped, jittered), and the loop goes on

or, around one call whose failure the caller handles itself::

    try:
        await redis.ping()
    except Exception as exc:
        if process_outages.failed(exc) is None:
            raise  # not an outage: a bug, or bad data
    else:
        process_outages.ok(REDIS)

Log lines name the dependency and the exception's type, never its message: a driver's message may carry a
statement's parameters (message text, phone numbers).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import sys
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

import redis.exceptions

from soro.metrics import DependencyMetrics

log = logging.getLogger(__name__)

T = TypeVar("T")

REDIS = "redis"
DATABASE = "database"
DEPENDENCIES = (REDIS, DATABASE)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def dependency_of(exc: BaseException) -> str | None:
    """The dependency whose absence ``exc`` shows (``REDIS``, ``DATABASE``), or None when it is no outage.

    redis-py wraps its socket errors in its own; a bare ``OSError`` (connection refused, reset) comes from the
    database driver, which lets them through when it connects.
    """
    for error in _chain(exc):
        if isinstance(error, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
            return REDIS
        if isinstance(error, redis.exceptions.RedisError):
            return None  # Redis answered, with an error: not an outage
        if isinstance(error, OSError):
            return DATABASE
        if type(error).__module__.startswith("asyncpg") and type(error).__name__ in _ASYNCPG_OUTAGES:
            return DATABASE
        # Looked up, not imported: a process without a database (the worker) never loads SQLAlchemy, and then
        # no error can be one of its.
        database = sys.modules.get("sqlalchemy.exc")
        if database is None:
            continue
        if isinstance(error, database.DBAPIError) and (
            error.connection_invalidated or isinstance(error, database.OperationalError)
        ):
            return DATABASE
        if isinstance(error, database.TimeoutError | database.InterfaceError):
            return DATABASE
    return None


# asyncpg's errors for a server that went away, restarts or was shut down (by name: asyncpg is optional).
_ASYNCPG_OUTAGES = frozenset(
    {
        "ConnectionDoesNotExistError",
        "PostgresConnectionError",
        "CannotConnectNowError",
        "AdminShutdownError",
        "CrashShutdownError",
        "InterfaceError",
    }
)


def describe(exc: BaseException) -> str:
    """``exc`` for a log line: the type names down its chain, no message (it may carry a statement's data)."""
    return " from ".join(type(error).__name__ for error in _chain(exc))


class Backoff:
    """Pauses between retries: ``base``, doubling up to ``cap`` seconds, each with jitter so loops spread out."""

    def __init__(self, base: float = 0.5, cap: float = 30.0) -> None:
        self.base = base
        self.cap = cap
        self.attempts = 0

    def next(self) -> float:
        delay: float = min(self.cap, self.base * 2.0**self.attempts)
        self.attempts += 1
        return delay * random.uniform(0.8, 1.0)

    def reset(self) -> None:
        self.attempts = 0

    async def sleep(self, stop: asyncio.Event | None = None) -> None:
        """Wait the next pause, or less when ``stop`` is set meanwhile."""
        await pause(self.next(), stop)


async def pause(seconds: float, stop: asyncio.Event | None = None) -> None:
    """Sleep ``seconds``, or less when ``stop`` is set meanwhile."""
    if stop is None:
        await asyncio.sleep(seconds)
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


@dataclass
class _Down:
    since: float
    errors: int
    first: str


class Outages:
    """Which dependencies a process has lost, with one log line when each outage starts and one when it ends."""

    def __init__(
        self, process: str, metrics: DependencyMetrics | None = None, dependencies: Sequence[str] = DEPENDENCIES
    ) -> None:
        """``dependencies``: those the process uses (a worker has no database), whose series start at 1."""
        self.process = process
        self.metrics = metrics
        self._down: dict[str, _Down] = {}
        if metrics is not None:
            metrics.prime(process, dependencies)

    def is_up(self, dependency: str) -> bool:
        return dependency not in self._down

    def failed(self, exc: BaseException) -> str | None:
        """Record ``exc`` if it shows an outage; returns the dependency, or None when ``exc`` is no outage."""
        dependency = dependency_of(exc)
        if dependency is not None:
            self.down(dependency, describe(exc))
        return dependency

    def down(self, dependency: str, reason: str) -> None:
        if self.metrics is not None:
            self.metrics.errors.labels(dependency, self.process).inc()
        outage = self._down.get(dependency)
        if outage is not None:
            outage.errors += 1
            return
        self._down[dependency] = _Down(time.monotonic(), 1, reason)
        if self.metrics is not None:
            self.metrics.up.labels(dependency, self.process).set(0)
        log.warning("%s unavailable in %s (%s); retrying with back-off", dependency, self.process, reason)

    def ok(self, *dependencies: str) -> None:
        """``dependencies`` just served a call: an outage of theirs is over."""
        for dependency in dependencies:
            outage = self._down.pop(dependency, None)
            if outage is None:
                continue
            if self.metrics is not None:
                self.metrics.up.labels(dependency, self.process).set(1)
            log.warning(
                "%s back in %s after %.1f s (%d failed attempts)",
                dependency,
                self.process,
                time.monotonic() - outage.since,
                outage.errors,
            )

    async def through(
        self,
        dependency: str,
        call: Callable[[], Awaitable[T]],
        give_up_at: float = math.inf,
        clock: Callable[[], float] = time.monotonic,
    ) -> T:
        """``call`` retried with back-off for as long as it fails because a dependency is away, until
        ``clock()`` reaches ``give_up_at``; a success ends ``dependency``'s outage. Other errors propagate."""
        backoff = Backoff(base=0.2, cap=5.0)
        while True:
            try:
                result = await call()
            except Exception as exc:
                if self.failed(exc) is None or clock() >= give_up_at:
                    raise
                await backoff.sleep()
                continue
            self.ok(dependency)
            return result

    @contextlib.asynccontextmanager
    async def guard(
        self, *uses: str, backoff: Backoff | None = None, stop: asyncio.Event | None = None
    ) -> AsyncIterator[None]:
        """Run a block that ``uses`` these dependencies: success marks them up (and resets ``backoff``); an
        outage is recorded, waited out with ``backoff`` and swallowed; any other error propagates."""
        try:
            yield
        except Exception as exc:
            if self.failed(exc) is None:
                raise
            if backoff is not None:
                await backoff.sleep(stop)
        else:
            self.ok(*uses)
            if backoff is not None:
                backoff.reset()


_SHARED: weakref.WeakKeyDictionary[DependencyMetrics, dict[str, Outages]] = weakref.WeakKeyDictionary()


def outages(metrics: DependencyMetrics, process: str, dependencies: Sequence[str] = DEPENDENCIES) -> Outages:
    """The one ``Outages`` of ``process`` behind ``metrics``: every loop of a process shares its outages."""
    by_process = _SHARED.setdefault(metrics, {})
    if process not in by_process:
        by_process[process] = Outages(process, metrics, dependencies)
    return by_process[process]
