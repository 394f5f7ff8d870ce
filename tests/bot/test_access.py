"""Blocks and the pilot allow-list, on real PostgreSQL and Redis: refused messages never reach the queue."""

from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.access import parse_address
from bot.pipeline import Inbound, Outcome
from bot.services import Services
from tests.support.stack import queued, stack_settings


@pytest.fixture
async def make_services(postgres_url: str, redis_url: str) -> AsyncIterator[Any]:
    """Bot processes of one deployment; the second one made is the first one restarted."""
    made: list[Services] = []

    def make(**overrides: Any) -> Services:
        settings = stack_settings(postgres_url, redis_url, "http://127.0.0.1:9/v1", "soro", **overrides)
        if made:  # the same deployment, restarted: same streams
            settings = settings.model_copy(update={"stream_prefix": made[0].settings.stream_prefix})
        services = Services.create(settings)
        made.append(services)
        return services

    yield make
    if made:
        keys = [key async for key in made[0].redis.scan_iter(f"{made[0].settings.stream_prefix}:*")]
        if keys:
            await made[0].redis.delete(*keys)
    for services in made:
        await services.close()


async def test_a_blocked_user_gets_one_notice_then_silence_and_nothing_is_queued(make_services: Any) -> None:
    services = make_services()
    pipeline = services.pipeline
    await pipeline.access.set_rule("telegram", "801", "blocked", True, by="42")
    first = await pipeline.accept(Inbound("telegram", "801", "Салом", "blk-1"))
    second = await pipeline.accept(Inbound("telegram", "801", "Салом боз", "blk-2"))
    assert first.outcome is second.outcome is Outcome.REJECTED
    assert first.notice is not None and "қатъ" in first.notice
    assert second.notice is None and second.reason == "blocked"
    assert await queued(services) == []
    # Others are served as before.
    assert (await pipeline.accept(Inbound("telegram", "802", "Салом", "blk-3"))).outcome is Outcome.QUEUED

    # The block is stored: a restarted bot (empty cache) keeps it, and stays silent.
    restarted = make_services()
    again = await restarted.pipeline.accept(Inbound("telegram", "801", "Салом", "blk-4"))
    assert again.outcome is Outcome.REJECTED and again.notice is None
    await restarted.pipeline.access.set_rule("telegram", "801", "blocked", False)
    assert (await restarted.pipeline.accept(Inbound("telegram", "801", "Салом", "blk-5"))).outcome is Outcome.QUEUED
    assert [turn.messages[-1].content for turn in await queued(services)] == ["Салом", "Салом"]


async def test_pilot_mode_serves_only_the_allow_list_and_tells_others_once_a_day(make_services: Any) -> None:
    services = make_services(allow_list=[901, "+992901234567"])
    pipeline = services.pipeline
    assert (await pipeline.accept(Inbound("telegram", "901", "Салом", "p-1"))).outcome is Outcome.QUEUED
    assert (await pipeline.accept(Inbound("sms", "+992901234567", "Салом", "p-2"))).outcome is Outcome.QUEUED
    outsider = await pipeline.accept(Inbound("telegram", "902", "Салом", "p-3"))
    assert outsider.outcome is Outcome.REJECTED and outsider.notice is not None and "озмоиш" in outsider.notice
    later = await pipeline.accept(Inbound("telegram", "902", "Салом", "p-4"))
    assert later.outcome is Outcome.REJECTED and later.notice is None
    # An operator lets a teacher in: /allow 902.
    await pipeline.access.set_rule("telegram", "902", "allowed", True, by="42")
    assert (await pipeline.accept(Inbound("telegram", "902", "Салом", "p-5"))).outcome is Outcome.QUEUED
    assert len(await queued(services)) == 3


async def test_an_allow_made_by_operators_alone_turns_pilot_mode_on(make_services: Any) -> None:
    services = make_services()
    await services.pipeline.access.set_rule("telegram", "911", "allowed", True)
    assert (await services.pipeline.accept(Inbound("telegram", "912", "Салом", "a-1"))).outcome is Outcome.REJECTED
    assert (await services.pipeline.accept(Inbound("telegram", "911", "Салом", "a-2"))).outcome is Outcome.QUEUED


def test_operator_ids_name_the_channel() -> None:
    assert parse_address("123456789") == ("telegram", "123456789")
    assert parse_address("-100200") == ("telegram", "-100200")
    assert parse_address("+992901234567") == ("sms", "+992901234567")
    assert parse_address("console:ali") == ("console", "ali")
    assert parse_address("Ali") is None


async def test_a_block_made_by_another_bot_process_applies_after_its_refresh(make_services: Any) -> None:
    here, there = make_services(), make_services()
    there.pipeline.access.refresh_seconds = 0.0
    assert (await there.pipeline.accept(Inbound("telegram", "921", "Салом", "o-1"))).outcome is Outcome.QUEUED
    await here.pipeline.access.set_rule("telegram", "921", "blocked", True)
    refused = await there.pipeline.accept(Inbound("telegram", "921", "Салом", "o-2"))
    assert refused.outcome is Outcome.REJECTED and refused.notice is not None
    await here.pipeline.access.set_rule("telegram", "921", "blocked", False)
    assert (await there.pipeline.accept(Inbound("telegram", "921", "Салом", "o-3"))).outcome is Outcome.JOINED
