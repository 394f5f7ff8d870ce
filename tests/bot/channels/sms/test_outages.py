"""The SMS channel rides out Redis and the database going away and coming back: no MO lost, none answered
twice, one log line when an outage starts and one when it ends, and the dependency gauge following it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from bot.store.models import Request
from tests.bot.channels.sms.conftest import SmsStack, SmsStackFactory, assert_private, new_number, secrets_of
from tests.support.proxy import TcpProxy
from tests.support.redis_server import PrivateRedis
from tests.support.stack import eventually

pytestmark = pytest.mark.slow

QUESTION = "Салом! Дар бораи Душанбе нақл кунед."


def outage_lines(caplog: pytest.LogCaptureFixture, dependency: str) -> tuple[int, int]:
    """How many outages of ``dependency`` the bot logged as started, and as ended."""
    lines = [r.getMessage() for r in caplog.records if r.name == "soro.outage"]
    return (
        sum(line.startswith(f"{dependency} unavailable in bot") for line in lines),
        sum(line.startswith(f"{dependency} back in bot") for line in lines),
    )


def gauge(stack: SmsStack, dependency: str) -> float | None:
    labels = {"dependency": dependency, "process": "bot"}
    return stack.services.metrics.registry.get_sample_value("soro_dependency_up", labels)


async def requests_of(stack: SmsStack, count: int) -> list[Request]:
    async def enough() -> bool:
        return len(await stack.rows(Request)) >= count

    await eventually(enough, 40, what=f"{count} turns")
    return await stack.rows(Request)


async def answer_each_once(stack: SmsStack, numbers: list[str], requests: list[Request]) -> None:
    for request in requests:
        await stack.publish_answer(request, f"Ҷавоб {request.id[:4]}.")
    for number in numbers:
        await stack.answers(number, within=40)
    await stack.settle(len(numbers))
    assert [len(stack.kannel.received(n)) for n in numbers] == [1] * len(numbers), "an answer lost or sent twice"


async def test_redis_killed_and_restarted_under_the_sms_channel_loses_nothing_and_logs_once(
    make_sms_stack: SmsStackFactory, tmp_path: Path, private_logs: pytest.LogCaptureFixture
) -> None:
    redis = PrivateRedis(tmp_path / "redis")
    await redis.start()
    try:
        async with make_sms_stack(redis_url=redis.url) as stack:
            before, during, keyword = new_number(), new_number(), new_number()
            await stack.kannel.inject(before, QUESTION)
            await requests_of(stack, 1)
            await asyncio.sleep(1.5)  # appendfsync everysec: the turn is on disk
            await redis.kill()

            await stack.kannel.inject(during, QUESTION)  # refused (503) while Redis is away: smsbox asks again
            await stack.kannel.inject(keyword, "НАВ")  # needs only the database: its notice goes out meanwhile
            await stack.answers(keyword)
            await eventually(lambda: gauge(stack, "redis") == 0, 20, what="the gauge to show the outage")
            await eventually(lambda: "Retrying request" in stack.kannel.log("smsbox"), 20)
            await asyncio.sleep(3)  # several retries of the MO and of the dispatcher meanwhile

            await redis.start()  # the same port and the same append-only file
            requests = await requests_of(stack, 2)
            await answer_each_once(stack, [before, during], requests)
            assert len(stack.kannel.received(keyword)) == 1

            assert gauge(stack, "redis") == 1
            errors = {"dependency": "redis", "process": "bot"}
            assert stack.metric("soro_dependency_errors_total", errors) >= 2
            assert outage_lines(private_logs, "redis") == (1, 1)
            assert_private(private_logs.text, secrets_of(stack), [before, during, keyword], [QUESTION])
    finally:
        await redis.kill()


def through(url: str, proxy: TcpProxy) -> str:
    parts = urlsplit(url)
    user = parts.netloc.rpartition("@")[0]
    return urlunsplit(parts._replace(netloc=f"{user}@127.0.0.1:{proxy.port}"))


async def test_the_database_away_and_back_under_the_sms_channel_loses_nothing_and_logs_once(
    make_sms_stack: SmsStackFactory, postgres_url: str, private_logs: pytest.LogCaptureFixture
) -> None:
    server = urlsplit(postgres_url)
    proxy = TcpProxy(server.hostname or "127.0.0.1", server.port or 5432)
    await proxy.start()
    try:
        async with make_sms_stack(database_url=through(postgres_url, proxy)) as stack:
            before, during = new_number(), new_number()
            await stack.kannel.inject(before, QUESTION)
            await requests_of(stack, 1)
            await proxy.stop()  # PostgreSQL unreachable: new connections refused, open ones cut

            await stack.kannel.inject(during, QUESTION)
            await eventually(lambda: gauge(stack, "database") == 0, 20, what="the gauge to show the outage")
            await eventually(lambda: "Retrying request" in stack.kannel.log("smsbox"), 20)
            await asyncio.sleep(3)

            await proxy.start()
            requests = await requests_of(stack, 2)
            await answer_each_once(stack, [before, during], requests)
            assert gauge(stack, "database") == 1
            assert outage_lines(private_logs, "database") == (1, 1)
            assert_private(private_logs.text, secrets_of(stack), [before, during], [QUESTION])
    finally:
        await proxy.stop()
