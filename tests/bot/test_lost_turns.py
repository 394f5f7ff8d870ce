"""Turns a restarted Redis lost go back into the stream within one housekeeping sweep, and only those.

A private ``redis-server`` (AOF, as compose runs it) killed with -9, then started on an empty directory (as one
without persistence comes back) or on its AOF, with one entry taken out (as a host that lost power comes back).
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.delivery import DeliveryLoop
from bot.pipeline import Inbound, Outcome
from bot.services import Services
from inference.queue import TurnRequest
from tests.bot.conftest import make_services
from tests.support.redis_server import PrivateRedis
from tests.support.stack import queued


@pytest.fixture
async def redis_server(tmp_path: Path) -> AsyncIterator[PrivateRedis]:
    server = PrivateRedis(tmp_path / "redis")
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def services(postgres_url: str, redis_server: PrivateRedis) -> AsyncIterator[Services]:
    services = make_services(postgres_url, redis_server.url)
    yield services
    await services.close()


def housekeeping(services: Services) -> DeliveryLoop:
    return DeliveryLoop(services.settings, services.pipeline, services.queue, {}, services.metrics)


async def accept_two(services: Services) -> set[str]:
    for chat, text in (("7001", "Салом! Имрӯз чӣ рӯз аст?"), ("7002", "Ду каср чӣ тавр ҷамъ мешавад?")):
        accepted = await services.pipeline.accept(Inbound("telegram", chat, text, f"lost-{chat}"))
        assert accepted.outcome is Outcome.QUEUED
    await services.pipeline.settle()  # both marked QUEUED in SQL
    await asyncio.sleep(2.1)  # turns marked QUEUED in the last two seconds may not be in the stream yet
    return {turn.request_id for turn in await queued(services)}


async def restart(server: PrivateRedis, *, keep_data: bool) -> None:
    """``kill -9``, then started again on its AOF or on an empty directory (``start`` waits for it to answer)."""
    await server.kill()
    if not keep_data:
        shutil.rmtree(server.data_dir)
    await server.start()


async def test_turns_a_redis_restarted_without_its_data_lost_are_enqueued_again_once(
    services: Services, redis_server: PrivateRedis, caplog: pytest.LogCaptureFixture
) -> None:
    loop = housekeeping(services)
    turns = await accept_two(services)
    assert len(turns) == 2
    await loop._sweep()  # the first sweep of a new deployment finds nothing missing
    assert {t.request_id for t in await queued(services)} == turns

    await restart(redis_server, keep_data=False)
    assert await queued(services) == []
    await loop._sweep()

    back = [t.request_id for t in await queued(services)]
    assert sorted(back) == sorted(turns), "both turns are in the stream again, each once"
    assert services.metrics.registry.get_sample_value("soro_turns_requeued_total") == 2
    assert "2 of 2 queued turns were missing" in caplog.text
    await loop._sweep()
    assert len(await queued(services)) == 2, "a later sweep does not enqueue them again"

    await housekeeping(services)._sweep()
    assert len(await queued(services)) == 2, "another bot process does not compare the same restart again"


async def test_a_turn_missing_after_a_restart_on_the_aof_is_enqueued_again_and_the_others_are_not(
    services: Services, redis_server: PrivateRedis
) -> None:
    loop = housekeeping(services)
    turns = await accept_two(services)
    await loop._sweep()  # compares this run of the server, and takes its lock

    await restart(redis_server, keep_data=True)
    entries = await services.redis.xrange(services.queue.names.requests)
    assert len(entries) == 2, "the AOF kept both"
    missing_entry, missing = entries[1][0], TurnRequest.from_json(entries[1][1][b"data"]).request_id
    await services.redis.xdel(services.queue.names.requests, missing_entry)  # the write the AOF lacked
    await loop._sweep()

    back = [t.request_id for t in await queued(services)]
    assert sorted(back) == sorted(turns), "the missing turn is back, the kept one is there once"
    assert back[-1] == missing
    assert services.metrics.registry.get_sample_value("soro_turns_requeued_total") == 1
