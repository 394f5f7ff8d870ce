"""Fixtures of the bot's tests: its services on real PostgreSQL and Redis, and the Bot API stand-in."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.services import Services
from tests.support.stack import stack_settings
from tests.support.telegram_api import BotApiStandIn


def make_services(postgres_url: str, redis_url: str, **overrides: object) -> Services:
    """The bot's services with no model server behind them: enough to accept, claim and record."""
    return Services.create(stack_settings(postgres_url, redis_url, "http://127.0.0.1:9/v1", "soro", **overrides))


@pytest.fixture
async def services(postgres_url: str, redis_url: str) -> AsyncIterator[Services]:
    services = make_services(postgres_url, redis_url, max_input_chars=500)
    yield services
    keys = [key async for key in services.redis.scan_iter(f"{services.settings.stream_prefix}:*")]
    if keys:
        await services.redis.delete(*keys)
    await services.close()


@pytest.fixture
async def api() -> AsyncIterator[BotApiStandIn]:
    stand_in = BotApiStandIn()
    await stand_in.start()
    yield stand_in
    await stand_in.stop()
