"""``soro demo``: the whole serving path offline, on embedded defaults.

SQLite (migrated), the Redis at SORO_REDIS_URL or a private ``redis-server``, vLLM (CPU build, its own venv)
serving a small demo model built on first run, one worker in this process, and the console channel. A model
already served elsewhere is used instead when SORO_LLM_BASE_URL is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator

from redis.asyncio import Redis

from bot.channels.console import ConsoleChat, console_services
from bot.store.migrate import upgrade
from inference.worker import Worker, llm_client
from soro.metrics import WorkerMetrics
from soro.ports import free_port
from soro.settings import Settings
from soro.vllm_runtime import VllmOptions, VllmServer, ensure_demo_model

DEMO_MODEL_NAME = "soro-demo"


class DemoError(RuntimeError):
    """A missing piece the user can fix; the message says how."""


def say(message: str) -> None:
    print(f"[demo] {message}", file=sys.stderr, flush=True)


async def _redis_answers(url: str) -> bool:
    client = Redis.from_url(url, socket_connect_timeout=1)
    try:
        return bool(await client.ping())
    except Exception:
        return False
    finally:
        await client.aclose()


@contextlib.asynccontextmanager
async def redis_for_demo(settings: Settings) -> AsyncIterator[str]:
    """The configured Redis if it answers, else a private one that lives as long as the demo."""
    if await _redis_answers(settings.redis_url):
        yield settings.redis_url
        return
    binary = shutil.which("redis-server")
    if binary is None:
        raise DemoError(
            f"no Redis answers at {settings.redis_url} and redis-server is not installed: "
            "install it (apt-get install redis-server, or scripts/setup.sh) or set SORO_REDIS_URL"
        )
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="soro-redis-") as folder:
        process = await asyncio.create_subprocess_exec(
            *[binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", folder],
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        url = f"redis://127.0.0.1:{port}/0"
        try:
            for _ in range(50):
                if await _redis_answers(url):
                    break
                await asyncio.sleep(0.1)
            else:
                raise DemoError(f"the private redis-server on port {port} did not start")
            say(f"started a private Redis on port {port}")
            yield url
        finally:
            process.terminate()
            await process.wait()


@contextlib.asynccontextmanager
async def model_for_demo(settings: Settings) -> AsyncIterator[tuple[str, str, bool]]:
    """(base URL, model name, is the demo model): a configured server, or vLLM with the demo model."""
    if "SORO_LLM_BASE_URL" in os.environ:
        yield settings.llm_base_url, settings.llm_model, False
        return
    say("preparing the demo model (built once, then cached)…")
    model_dir = await asyncio.to_thread(ensure_demo_model, settings)
    options = VllmOptions.for_settings(settings, model_dir, DEMO_MODEL_NAME)
    say(f"starting vLLM (CPU) on port {options.port}; this takes about a minute…")
    async with VllmServer(options) as server:
        yield server.base_url, server.model, True


async def run_demo(settings: Settings) -> int:
    # Embedded defaults of its own, so a demo never mixes with a deployment's database or streams.
    if "SORO_DATABASE_URL" not in os.environ:
        settings = settings.model_copy(update={"database_url": f"sqlite+aiosqlite:///{settings.cache_dir / 'demo.db'}"})
    if "SORO_STREAM_PREFIX" not in os.environ:
        settings = settings.model_copy(update={"stream_prefix": "soro-demo"})
    try:
        async with redis_for_demo(settings) as redis_url, model_for_demo(settings) as (base_url, model, is_demo):
            settings = settings.model_copy(
                update={"redis_url": redis_url, "llm_base_url": base_url, "llm_model": model, "worker_concurrency": 4}
            )
            await asyncio.to_thread(upgrade, settings.database_url)
            if is_demo:
                say(
                    f"answering: {model}, a tiny demo model trained for a minute on a Tajik sample text. "
                    "Its Tajik is poor: it babbles. Set SORO_LLM_BASE_URL and SORO_LLM_MODEL to talk to a trained Soro."
                )
            else:
                say(f"answering: {model} at {base_url}")
            return await _chat(settings)
    except DemoError as exc:
        say(f"error: {exc}")
        return 2


async def _chat(settings: Settings) -> int:
    services, reply_stream = console_services(settings)
    worker = Worker(settings, services.queue, llm_client(settings), WorkerMetrics())
    stop = asyncio.Event()
    worker_task = asyncio.create_task(worker.run(stop))
    try:
        chat = ConsoleChat(services, "demo", sys.stdin, sys.stdout, reply_stream)
        if chat.interactive:
            say("write in Tajik and press Enter; /new starts over, /help lists commands, Ctrl-D ends")
        return await chat.run()
    finally:
        stop.set()
        await worker_task
        await worker.llm.close()
        await services.close()
