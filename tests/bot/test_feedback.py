"""Votes on answers, on real PostgreSQL and Redis: once per answer, changed by a second tap, SMS ratings, stats."""

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from bot.feedback import Change
from bot.pipeline import Inbound
from bot.services import Services
from bot.stats import models_table, traffic_since, wilson_interval
from bot.store.models import Feedback, Vote, utcnow
from tests.support.conversations import answered as answered_turn
from tests.support.stack import stack_settings


@pytest.fixture
async def services(postgres_url: str, redis_url: str) -> AsyncIterator[Services]:
    settings = stack_settings(postgres_url, redis_url, "http://127.0.0.1:9/v1", "soro")
    services = Services.create(settings)
    yield services
    keys = [key async for key in services.redis.scan_iter(f"{settings.stream_prefix}:*")]
    if keys:
        await services.redis.delete(*keys)
    await services.close()


async def answered(services: Services, channel: str, address: str, key: str, model: str = "soro") -> str:
    return await answered_turn(
        services, channel, address, key, "Пойтахти Тоҷикистон кадом шаҳр аст?", "Душанбе.", model=model
    )


def counted(services: Services, model: str, channel: str, vote: str) -> float:
    value = services.metrics.registry.get_sample_value(
        "soro_feedback_total", {"model": model, "channel": channel, "vote": vote}
    )
    return value or 0.0


async def votes(services: Services) -> list[tuple[Vote, str, str | None]]:
    async with services.sessions() as session:
        return [(f.vote, f.voter, f.comment) for f in (await session.scalars(select(Feedback))).all()]


async def test_a_vote_is_stored_once_and_a_second_tap_changes_it(services: Services) -> None:
    request_id = await answered(services, "telegram", "-3001", "v-1")
    feedback = services.pipeline.feedback
    first = await feedback.rate(request_id, Vote.UP, "77")
    again = await feedback.rate(request_id, Vote.UP, "77")
    assert first is not None and again is not None
    assert (first.change, again.change) == (Change.NEW, Change.SAME)
    assert first.model == "soro" and first.channel == "telegram"
    assert await votes(services) == [(Vote.UP, "77", None)]
    changed = await feedback.rate(request_id, Vote.DOWN, "78")  # another member of the group
    assert changed is not None and changed.change is Change.CHANGED
    assert await votes(services) == [(Vote.DOWN, "78", None)]
    assert (counted(services, "soro", "telegram", "up"), counted(services, "soro", "telegram", "down")) == (1, 1)

    # The comment after a 👎 comes from the voter who was asked, as a reply to the question.
    await feedback.asked_why(-3001, 555, changed.feedback_id, "78")
    assert not await feedback.comment(-3001, 555, "77", "Ман не, вай гуфт")
    assert await feedback.comment(-3001, 555, "78", "Ҷавоб хеле кӯтоҳ буд")
    assert await votes(services) == [(Vote.DOWN, "78", "Ҷавоб хеле кӯтоҳ буд")]
    assert await feedback.rate("no-such-request", Vote.UP, "77") is None


async def test_an_sms_rating_counts_only_right_after_an_answer(services: Services) -> None:
    feedback = services.pipeline.feedback
    assert await feedback.rate_last("sms", "+992901110001", Vote.UP) is None  # never answered
    await answered(services, "sms", "+992901110001", "s-1")
    rated = await feedback.rate_last("sms", "+992901110001", Vote.DOWN)
    assert rated is not None and rated.change is Change.NEW and rated.channel == "sms"
    await services.pipeline.accept(Inbound("sms", "+992901110001", "Боз як савол", "s-2"))
    assert await feedback.rate_last("sms", "+992901110001", Vote.UP) is None  # a question came after the answer
    assert await votes(services) == [(Vote.DOWN, "+992901110001", None)]


async def test_forgetting_a_user_removes_their_votes(services: Services) -> None:
    request_id = await answered(services, "telegram", "3002", "f-1")
    await services.pipeline.feedback.rate(request_id, Vote.UP, "3002")
    await services.pipeline.forget("telegram", "3002")
    assert await votes(services) == []


async def test_todays_stats_compare_the_models(services: Services) -> None:
    since = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
    for i in range(4):
        request_id = await answered(services, "telegram", str(3100 + i), f"m-{i}", model="soro")
        await services.pipeline.feedback.rate(request_id, Vote.UP if i < 3 else Vote.DOWN, str(3100 + i))
    request_id = await answered(services, "telegram", "3200", "m-9", model="soro-next")
    await services.pipeline.feedback.rate(request_id, Vote.DOWN, "3200")
    today = await traffic_since(services.sessions, since)
    assert (today.messages, today.answers, today.notices) == (5, 5, 0)
    assert today.median_latency is not None
    soro, candidate = today.models
    assert (soro.model, soro.up, soro.down, soro.up_share) == ("soro", 3, 1, 0.75)
    assert (candidate.model, candidate.up, candidate.down) == ("soro-next", 0, 1)
    table = models_table(today.models)
    assert "soro-next" in table and "75%" in table and "overlap" in table


def test_wilson_interval() -> None:
    low, high = wilson_interval(80, 100)
    assert round(low, 3) == 0.711 and round(high, 3) == 0.867
    assert wilson_interval(0, 0) == (0.0, 1.0)
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and 0.27 < high < 0.28


async def test_soro_stats_models_prints_the_comparison(services: Services) -> None:
    import asyncio

    from typer.testing import CliRunner

    from soro.cli import app

    for i in range(3):
        request_id = await answered(services, "telegram", str(3300 + i), f"cli-{i}", model="soro-next")
        await services.pipeline.feedback.rate(request_id, Vote.UP, str(3300 + i))
    env = {"SORO_DATABASE_URL": services.settings.database_url}
    result = await asyncio.to_thread(CliRunner().invoke, app, ["stats", "models", "--days", "1"], env=env)
    assert result.exit_code == 0, result.output
    header, row = result.output.splitlines()[:2]
    assert header.split()[:2] == ["model", "answers"]
    assert row.split()[:6] == ["soro-next", "3", "3", "0", "100%", "44%–100%"]
