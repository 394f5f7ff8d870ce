"""Fixtures of the whole-system tests."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from soro.ports import free_port
from tests.support.processes import soro_env
from tests.support.vllm import ServedModel


@pytest.fixture
async def services_env(postgres_url: str, redis_url: str, vllm_server: ServedModel) -> AsyncIterator[dict[str, str]]:
    prefix = f"test-cli-{uuid.uuid4().hex[:12]}"
    yield soro_env(
        database_url=postgres_url,
        redis_url=redis_url,
        stream_prefix=prefix,
        llm_base_url=vllm_server.base_url,
        llm_model=vllm_server.model,
        worker_metrics_port=str(free_port()),
        http_port=str(free_port()),
        visibility_timeout_seconds="5",
    )
    client = Redis.from_url(redis_url)
    keys = [key async for key in client.scan_iter(f"{prefix}:*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()
