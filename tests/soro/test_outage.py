"""Outages of Redis and the database: recognised from the real clients' errors, logged once, backed off."""

from __future__ import annotations

import asyncio
import time

import pytest
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import create_async_engine

from soro.metrics import DependencyMetrics
from soro.outage import DATABASE, REDIS, Backoff, Outages, dependency_of, describe, outages
from soro.ports import free_port


async def redis_error() -> BaseException:
    client = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0")
    try:
        await client.ping()
    except Exception as exc:
        return exc
    finally:
        await client.aclose()
    raise AssertionError("no Redis listens there")


async def database_error(url: str) -> BaseException:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception as exc:
        return exc
    finally:
        await engine.dispose()
    raise AssertionError("no database listens there")


async def test_the_real_clients_errors_name_the_dependency_that_is_away(postgres_url: str) -> None:
    assert dependency_of(await redis_error()) == REDIS
    unreachable = postgres_url.rsplit("@", 1)[0] + f"@127.0.0.1:{free_port()}/nothing"
    assert dependency_of(await database_error(unreachable)) == DATABASE
    # A terminated backend: the connection is cut in the middle of a statement.
    engine = create_async_engine(postgres_url)
    try:
        async with engine.connect() as victim, engine.connect() as killer:
            pid = (await victim.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            await killer.execute(text(f"SELECT pg_terminate_backend({pid})"))
            with pytest.raises(Exception) as cut:
                await victim.execute(text("SELECT 1"))
        assert dependency_of(cut.value) == DATABASE
    finally:
        await engine.dispose()


def test_errors_that_are_no_outage_are_not_taken_for_one() -> None:
    assert dependency_of(IntegrityError("INSERT …", {}, Exception("duplicate key"))) is None
    assert dependency_of(ValueError("bad data")) is None


def test_describe_gives_types_not_messages() -> None:
    try:
        try:
            raise ConnectionResetError("+992901234567 Салом")
        except OSError as exc:
            raise RuntimeError("секрет") from exc
    except RuntimeError as exc:
        assert describe(exc) == "RuntimeError from ConnectionResetError"


def test_backoff_doubles_up_to_its_cap_with_jitter_and_starts_over_after_a_reset() -> None:
    backoff = Backoff(base=0.5, cap=4.0)
    delays = [backoff.next() for _ in range(6)]
    assert all(0.8 * b <= d <= b for d, b in zip(delays, [0.5, 1, 2, 4, 4, 4], strict=True))
    backoff.reset()
    assert backoff.next() <= 0.5


async def test_a_backoff_sleep_ends_when_asked_to_stop() -> None:
    stop = asyncio.Event()
    stop.set()
    started = time.monotonic()
    await Backoff(base=30).sleep(stop)
    assert time.monotonic() - started < 1


async def test_an_outage_is_logged_once_when_it_starts_and_once_when_it_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = CollectorRegistry()
    process = Outages("worker", DependencyMetrics(registry))
    labels = {"dependency": REDIS, "process": "worker"}
    assert registry.get_sample_value("soro_dependency_up", labels) == 1
    error = await redis_error()
    backoff = Backoff(base=0.01, cap=0.02)
    for _ in range(5):
        async with process.guard(REDIS, backoff=backoff):
            raise error
    assert registry.get_sample_value("soro_dependency_up", labels) == 0
    assert registry.get_sample_value("soro_dependency_errors_total", labels) == 5
    async with process.guard(REDIS, backoff=backoff):
        pass
    assert registry.get_sample_value("soro_dependency_up", labels) == 1
    lines = [r.getMessage() for r in caplog.records if r.name == "soro.outage"]
    assert len(lines) == 2
    assert lines[0].startswith("redis unavailable in worker (ConnectionError")
    assert lines[1].startswith("redis back in worker after") and "(5 failed attempts)" in lines[1]
    with pytest.raises(ValueError):  # not an outage: the guard lets it through
        async with process.guard(REDIS):
            raise ValueError("a bug")


def test_every_loop_of_a_process_shares_its_outages() -> None:
    metrics = DependencyMetrics(CollectorRegistry())
    assert outages(metrics, "bot") is outages(metrics, "bot")
    assert outages(metrics, "bot") is not outages(DependencyMetrics(CollectorRegistry()), "bot")


def test_a_process_shows_only_the_dependencies_it_uses() -> None:
    registry = CollectorRegistry()
    Outages("worker", DependencyMetrics(registry), [REDIS])
    assert registry.get_sample_value("soro_dependency_up", {"dependency": REDIS, "process": "worker"}) == 1
    assert registry.get_sample_value("soro_dependency_up", {"dependency": DATABASE, "process": "worker"}) is None
