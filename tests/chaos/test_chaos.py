"""Chaos: real processes and real faults, and what the users saw through them.

Each scenario runs ``soro bot`` and three ``soro worker`` (see ``harness``), puts users to work, breaks one
dependency the way the field breaks it, and prints a row: messages accepted, answered by the model, told with a
notice, lost, duplicate finals, latency and recovery time. Nothing may be lost or sent twice, no process may
exit unasked, and no log line of any process may carry a message, a phone number or a secret.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from bot.store.models import InboundKey
from soro.ports import free_port
from tests.chaos.conftest import StackFactory
from tests.chaos.harness import ChaosStack, Fault, Row, is_notice, percentile, report
from tests.support.kannel import SERVICE_NUMBER, Kannel, KannelConfig
from tests.support.stack import eventually
from tests.support.vllm import ServedModel

pytestmark = [pytest.mark.chaos, pytest.mark.slow, pytest.mark.e2e, pytest.mark.timeout(480)]


def verdict(stack: ChaosStack, row: Row, rows: list[Row]) -> None:
    """Record the row, then fail with every broken promise at once."""
    rows.append(row)
    report(row, stack)
    problems = []
    if row.lost:
        problems.append(f"{row.lost} accepted messages never got a final message")
    if unexplained := row.duplicates - row.in_flight_at_a_cut:
        problems.append(f"{unexplained} duplicate final messages not explained by a bot kill or link cut mid-send")
    if stack.unsettled:
        problems.append("turns were still open long after the load ended")
    if exits := stack.unexpected_exits():
        problems.append(f"processes exited unasked (code, seconds after start): {exits}")
    if leaks := stack.leaks():
        problems.append("log lines carry what they must not:\n" + "\n".join(leaks[:10]))
    assert not problems, "\n".join(problems)


async def test_workers_and_the_bot_killed_at_random_under_1000_messages(stack: ChaosStack, rows: list[Row]) -> None:
    load = asyncio.create_task(stack.load(chats=100, messages=10, pause=(0.0, 0.5), budget=300.0))
    rng = random.Random()
    # Every process dies at least once; after that, whoever the dice say.
    plan = [stack.workers[0], stack.bot, stack.workers[1], stack.workers[2]]
    for kill in range(12):
        await asyncio.wait({load}, timeout=rng.uniform(3.0, 7.0))
        if load.done():
            break
        target = plan[kill] if kill < len(plan) else rng.choice([stack.bot, *stack.workers, *stack.workers])
        await stack.kill(target, down=rng.uniform(0.2, 2.0))
    await load
    await stack.settled()
    row = stack.row("kill -9 of workers and bot at random")
    verdict(stack, row, rows)
    assert row.accepted >= 1000 and len({t.chat for t in stack.turns}) >= 100


async def test_redis_killed_and_restarted_mid_load(stack: ChaosStack, rows: list[Row]) -> None:
    load = asyncio.create_task(stack.load(chats=30, messages=4, pause=(0.0, 1.0)))
    await asyncio.sleep(5)
    async with stack.fault("redis kill -9, 5 s down"):
        await stack.redis.kill()
        await asyncio.sleep(5)
        await stack.redis.start()
    await load
    await stack.settled()
    verdict(stack, stack.row("Redis kill -9 and restart (AOF everysec)"), rows)


async def test_database_backends_terminated_mid_load(stack: ChaosStack, rows: list[Row]) -> None:
    load = asyncio.create_task(stack.load(chats=30, messages=4, pause=(0.0, 1.0)))
    terminated = 0
    for _ in range(3):
        await asyncio.sleep(3)
        async with stack.fault("pg_terminate_backend"):
            terminated += await stack.terminate_database_backends()
    await load
    await stack.settled()
    assert terminated >= 3, "no backend of the bot was there to terminate"
    verdict(stack, stack.row("PostgreSQL backends terminated (3 times)"), rows)


async def test_model_server_unreachable_for_60_seconds(stack: ChaosStack, rows: list[Row]) -> None:
    load = asyncio.create_task(stack.load(chats=20, messages=4, pause=(1.0, 3.0)))
    await asyncio.sleep(4)
    async with stack.fault("vLLM unreachable 60 s"):
        await stack.vllm_link.stop()
        await asyncio.sleep(60)
        await stack.vllm_link.start()
    await load
    await stack.settled()
    verdict(stack, stack.row("vLLM unreachable 60 s"), rows)


async def test_telegram_answers_429_then_5xx(stack: ChaosStack, rows: list[Row]) -> None:
    load = asyncio.create_task(stack.load(chats=20, messages=4, pause=(0.0, 1.0)))
    await asyncio.sleep(3)
    async with stack.fault("Bot API 429 (retry_after 2) 10 s, then 502 10 s"):
        stack.api.fail_for(10, status=429, retry_after=2)
        await asyncio.sleep(10)
        stack.api.fail_for(10, status=502)
        await asyncio.sleep(10)
    await load
    await stack.settled()
    assert [c for c in stack.api.calls if c.failed == 429] and [c for c in stack.api.calls if c.failed == 502]
    verdict(stack, stack.row("Telegram 429 then 5xx, 20 s"), rows)


async def test_telegram_unreachable_for_60_seconds_while_the_bot_restarts(stack: ChaosStack, rows: list[Row]) -> None:
    load = asyncio.create_task(stack.load(chats=20, messages=4, pause=(1.0, 3.0)))
    await asyncio.sleep(4)
    async with stack.fault("Telegram unreachable 60 s, bot kill -9 and restart inside"):
        began = time.monotonic()
        await stack.api.cut()
        await asyncio.sleep(5)
        await stack.bot.kill()
        await stack.start_bot(wait=False)
        await asyncio.sleep(max(0.0, 60 - (time.monotonic() - began)))
        await stack.api.restore()
    await load
    await stack.settled()
    verdict(stack, stack.row("Telegram unreachable 60 s (bot restarted inside)"), rows)


async def test_kannel_down_while_answers_wait(
    make_chaos_stack: StackFactory, vllm_server: ServedModel, tmp_path: Path, rows: list[Row]
) -> None:
    numbers = [f"+99290{random.randrange(10**6, 10**7)}" for _ in range(10)]
    http_port = str(free_port())
    secret = "s" + secrets.token_hex(16)
    kannel = Kannel(tmp_path / "kannel", KannelConfig(bot_url=f"http://127.0.0.1:{http_port}", secret=secret))
    sms = {
        "http_port": http_port,
        "sms_kannel_url": kannel.sendsms_url,
        "sms_kannel_username": kannel.config.username,
        "sms_kannel_password": kannel.config.password,
        "sms_sender": SERVICE_NUMBER,
        "sms_mo_secret": secret,
        "sms_dlr_base_url": f"http://127.0.0.1:{http_port}",
        "sms_gateway_retry_max_seconds": "10",
        "phones": ",".join(numbers),
    }
    async with make_chaos_stack(**sms) as stack:
        await kannel.start()
        try:
            sent: dict[str, float] = {}
            for number in numbers:
                sent[number] = time.monotonic()
                await kannel.inject(number, f"chx{secrets.token_hex(5)} Салом! Пойтахти Тоҷикистон кадом шаҳр аст?")
            await eventually(lambda: _sms_seen(stack, len(numbers)), 30, 0.2, what="the bot to take every MO")
            # Telegram users go on meanwhile: SMS trouble must not touch them.
            telegram = asyncio.create_task(stack.load(chats=10, messages=3, pause=(0.5, 2.0)))
            fault = Fault("Kannel down 20 s", time.monotonic())
            stack.faults.append(fault)
            await kannel.stop()
            await asyncio.sleep(20)
            await kannel.start()
            fault.end = time.monotonic()
            received: dict[str, float] = {}

            def all_received() -> bool:
                for number in numbers:
                    if number not in received and kannel.received(number):
                        received[number] = time.monotonic()
                return len(received) == len(numbers)

            with contextlib.suppress(AssertionError):  # counted as lost below
                await eventually(all_received, 120, 0.2, what="every SMS answer")
            await telegram
            await stack.settled()
            texts = {number: [m.text for m in kannel.received(number)] for number in numbers}
        finally:
            await kannel.stop()
    telegram_row = stack.row("Telegram while Kannel is down")
    latencies = sorted(received[n] - sent[n] for n in received)
    told = sum(1 for n in received if is_notice(texts[n][0]))
    row = Row(
        scenario="Kannel down 20 s (SMS answers waiting)",
        accepted=len(numbers),
        answered=len(received) - told,
        told=told,
        lost=len(numbers) - len(received),
        duplicates=sum(max(0, len(t) - 1) for t in texts.values()),
        p50=percentile(latencies, 0.5),
        p95=percentile(latencies, 0.95),
        latency_max=latencies[-1] if latencies else 0.0,
        recovery=max((received[n] - (fault.end or 0.0) for n in received), default=0.0),
        faults=1,
        unexpected_exits=telegram_row.unexpected_exits,
        seconds=telegram_row.seconds,
    )
    rows.append(telegram_row)
    verdict(stack, row, rows)


async def _sms_seen(stack: ChaosStack, count: int) -> bool:
    engine = create_async_engine(stack.database_url)
    try:
        async with engine.connect() as connection:
            seen = await connection.scalar(
                select(func.count()).select_from(InboundKey).where(InboundKey.channel == "sms")
            )
    finally:
        await engine.dispose()
    return (seen or 0) >= count
