"""The processes compose runs ride out their dependencies going away: Redis killed and restarted, Telegram
unreachable at start, several workers on one host. Real processes, real faults."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from soro.ports import free_port
from soro.settings import Settings
from tests.support.processes import Processes
from tests.support.proxy import LinkShape, TcpProxy
from tests.support.redis_server import PrivateRedis
from tests.support.stack import eventually, running_stack, stack_settings
from tests.support.telegram_api import BotApiStandIn, text_update
from tests.support.vllm import ServedModel

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


@pytest.fixture
async def processes(services_env: dict[str, str], tmp_path: Path) -> AsyncIterator[Processes]:
    running = Processes(services_env, tmp_path)
    yield running
    for _, process in running.running:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def get_json(url: str) -> tuple[int, dict[str, object]]:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status, json.loads(await response.text())


async def test_workers_and_bot_ride_out_redis_killed_and_restarted(processes: Processes, tmp_path: Path) -> None:
    redis = PrivateRedis(tmp_path / "redis")
    await redis.start()
    api = BotApiStandIn()
    await api.start()
    telegram = {"SORO_TELEGRAM_TOKEN": api.token, "SORO_TELEGRAM_API_BASE": api.base, "SORO_REDIS_URL": redis.url}
    try:
        workers = [await processes.start("worker", SORO_WORKER_METRICS_PORT=str(free_port()), **telegram)]
        bot = await processes.start("bot", **telegram)
        api.feed(text_update(1, 501, "Салом! Шумо кистед?"))
        await api.wait_for(lambda: len(api.sent("sendMessage", 501)) >= 1, timeout=90)

        await redis.kill()
        await asyncio.sleep(4)  # several rounds of every loop meet a dead Redis
        assert [p.returncode for p in (*workers, bot)] == [None, None], processes.log(workers[0])[-2000:]
        await redis.start()
        api.feed(text_update(2, 502, "Боз як савол: имрӯз ҳаво чӣ гуна аст?"))
        await api.wait_for(lambda: len(api.sent("sendMessage", 502)) >= 1, timeout=90)
        assert len(api.sent("sendMessage", 501)) == 1 and len(api.sent("sendMessage", 502)) == 1
    finally:
        codes = await processes.stop_all()
        await redis.stop()
        await api.stop()
    assert codes == [0, 0], "both stop cleanly on SIGTERM after the outage"
    worker_log = processes.log(workers[0])
    assert worker_log.count("redis unavailable in worker") == 1, "one line per outage, not one per retry"
    assert "redis back in worker" in worker_log


async def test_the_bot_serves_while_telegram_is_unreachable_and_sets_its_webhook_when_it_returns(
    processes: Processes, services_env: dict[str, str]
) -> None:
    api = BotApiStandIn()
    await api.start()
    link = TcpProxy("127.0.0.1", api.port)
    await link.start()
    await link.stop()  # the international link is down as the bot starts
    port = services_env["SORO_HTTP_PORT"]
    bot = await processes.start(
        "bot",
        SORO_TELEGRAM_TOKEN=api.token,
        SORO_TELEGRAM_API_BASE=link.url,
        SORO_WEBHOOK_URL="http://127.0.0.1:1",
        SORO_WEBHOOK_SECRET="s3cret",
    )
    try:

        async def ready_says_degraded() -> bool:
            try:
                status, body = await get_json(f"http://127.0.0.1:{port}/readyz")
            except aiohttp.ClientError:
                return False
            return status == 200 and "telegram" in body["degraded"]  # type: ignore[operator]

        await eventually(ready_says_degraded, timeout=30, what="/readyz up, Telegram degraded")
        assert (await get_json(f"http://127.0.0.1:{port}/healthz"))[0] == 200
        await asyncio.sleep(2)
        assert bot.returncode is None, processes.log(bot)[-2000:]
        assert not api.sent("setWebhook")

        await link.start()
        await api.wait_for(lambda: len(api.sent("setWebhook")) == 1, timeout=90)
        status, body = await get_json(f"http://127.0.0.1:{port}/readyz")
        assert status == 200 and body["degraded"] == {}
    finally:
        codes = await processes.stop_all()
        await link.stop()
        await api.stop()
    assert codes == [0]
    assert processes.log(bot).count("Telegram is unreachable") == 1


async def test_several_workers_run_on_one_host_with_default_ports(
    processes: Processes, services_env: dict[str, str]
) -> None:
    first_port = free_port()
    started = [await processes.start("worker", SORO_WORKER_METRICS_PORT=str(first_port)) for _ in range(3)]
    try:
        await asyncio.sleep(8)  # time to import, bind and fail if it is going to
        assert [w.returncode for w in started] == [None, None, None], processes.log(started[-1])[-2000:]
        logs = [processes.log(w) for w in started]
        ports = {
            line.rsplit("port ", 1)[1].strip() for log in logs for line in log.splitlines() if "/metrics on" in line
        }
        assert len(ports) == 3, logs
        for served in ports:
            async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{served}/metrics") as response:
                assert response.status == 200 and "soro_worker_capacity" in await response.text()
    finally:
        codes = await processes.stop_all()
    assert codes == [0, 0, 0]


async def test_a_dead_workers_turn_moves_to_a_live_worker_within_15_seconds_by_default(
    postgres_url: str, redis_url: str, vllm_server: ServedModel
) -> None:
    default_visibility = Settings.model_fields["visibility_timeout_seconds"].default
    # Slow enough that the doomed worker is surely still streaming its answer when it dies.
    slow_link = TcpProxy("127.0.0.1", vllm_server.port, LinkShape(bytes_per_second=600))
    await slow_link.start()
    settings = stack_settings(
        postgres_url, redis_url, vllm_server.base_url, vllm_server.model, visibility_timeout_seconds=default_visibility
    )
    try:
        async with running_stack(settings, workers=0) as stack:
            doomed = stack.start_worker(llm_base_url=f"{slow_link.url}/v1")
            await stack.post_update(text_update(1, 801, "Салом! Дар бораи кӯҳҳои Помир нақл кунед."))
            await eventually(lambda: bool(doomed.worker.inflight), timeout=30, what="the doomed worker took the turn")
            rescuer = stack.start_worker()  # idle and alive: it must wait for the doomed one's silence
            await asyncio.sleep(default_visibility / 2)  # its heartbeats kept the turn away from the rescuer
            assert rescuer.worker.metrics.reclaimed._value.get() == 0
            assert doomed.worker.inflight, "the doomed worker finished before it could die"
            await stack.kill_worker(doomed)
            killed = time.monotonic()
            await eventually(lambda: rescuer.worker.metrics.reclaimed._value.get() == 1, timeout=30, interval=0.05)
            recovery = time.monotonic() - killed
            await stack.api.wait_for(lambda: len(stack.api.sent("sendMessage", 801)) >= 1, timeout=90)
            assert len(stack.api.sent("sendMessage", 801)) == 1
    finally:
        await slow_link.stop()
    print(f"recovery after a worker's death: {recovery:.1f} s (visibility timeout {default_visibility:.0f} s)")
    assert recovery <= 15.0
