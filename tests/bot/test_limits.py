"""Per-user limits on real Redis: the minute's and the day's counts, their lifetime, and a batch of messages
counted at once."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from bot.limits import UserLimits, Verdict

NOW = 1_800_000_000.0


@pytest.fixture
async def limits(redis_url: str) -> AsyncIterator[UserLimits]:
    redis = Redis.from_url(redis_url)
    prefix = f"limits-test-{id(redis)}"
    yield UserLimits(redis, prefix, per_minute=3, per_day=5)
    keys = [key async for key in redis.scan_iter(f"{prefix}:*")]
    if keys:
        await redis.delete(*keys)
    await redis.aclose()


async def test_more_than_the_minute_allows_is_rate_limited_and_a_new_minute_is_free_again(limits: UserLimits) -> None:
    verdicts = [await limits.check_message("telegram:1", NOW) for _ in range(4)]
    assert verdicts == [Verdict.OK] * 3 + [Verdict.RATE_LIMITED]
    assert await limits.check_message("telegram:1", NOW + 60) is Verdict.OK
    assert await limits.check_message("telegram:2", NOW) is Verdict.OK  # someone else's count is their own


async def test_more_than_the_day_allows_is_over_quota_whatever_the_minute(limits: UserLimits) -> None:
    verdicts = [await limits.check_message("sms:+992", NOW + 60 * i) for i in range(6)]
    assert verdicts == [Verdict.OK] * 5 + [Verdict.QUOTA]


async def test_a_batch_counts_each_message_even_two_of_one_user(limits: UserLimits) -> None:
    verdicts = await limits.check_messages(["telegram:7", "telegram:8", "telegram:7", "telegram:7", "telegram:7"], NOW)
    assert verdicts == [Verdict.OK, Verdict.OK, Verdict.OK, Verdict.OK, Verdict.RATE_LIMITED]


async def test_counters_expire_with_their_window(limits: UserLimits) -> None:
    await limits.check_messages(["telegram:9", "telegram:9"], NOW)
    keys = sorted([key async for key in limits.redis.scan_iter(f"{limits.prefix}:limit:msg:telegram:9:*")])
    ttls = sorted([await limits.redis.ttl(key) for key in keys])
    assert len(keys) == 2 and 0 < ttls[0] <= 60 and 60 < ttls[1] <= 86_400


async def test_limits_keep_counting_after_redis_forgot_its_scripts(limits: UserLimits) -> None:
    assert await limits.check_message("telegram:10", NOW) is Verdict.OK
    await limits.redis.script_flush()  # as after a restart
    assert await limits.check_messages(["telegram:10", "telegram:10", "telegram:10"], NOW) == [
        Verdict.OK,
        Verdict.OK,
        Verdict.RATE_LIMITED,
    ]
