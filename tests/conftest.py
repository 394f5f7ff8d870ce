"""Fixtures shared by every test package: settings, the real data folder, Redis and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.store.migrate import upgrade
from soro.settings import Settings

pytest_plugins = ["tests.support.vllm"]

REPO_ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real Tajik data folder (SORO_SHARED_DATA); tests that need it skip, saying why, when it is absent."""
    path = Settings().shared_data
    if not path.is_absolute():
        path = (REPO_ROOT / path).resolve()
    if not (path / "README.md").is_file():
        pytest.skip(f"real Tajik data not found at {path}: set SORO_SHARED_DATA to the shared data/tajik folder")
    return path


@pytest.fixture(scope="session")
def redis_url() -> str:
    return os.environ.get("SORO_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    try:
        await client.ping()
    except Exception as exc:  # pragma: no cover - environment problem, not a test failure
        pytest.fail(f"Redis is not reachable at {redis_url}: {exc}")
    yield client
    await client.aclose()


def _admin(server: str, statement: str) -> None:
    async def run() -> None:
        engine = create_async_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as connection:
                await connection.execute(text(statement))
        finally:
            await engine.dispose()

    asyncio.run(run())


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[tuple[str, str]]:
    """A PostgreSQL database migrated once per session with ``soro db upgrade``'s code, to clone from."""
    server = os.environ.get("SORO_TEST_POSTGRES", "postgresql+asyncpg://postgres@127.0.0.1:5432")
    name = f"soro_template_{uuid.uuid4().hex[:10]}"
    try:
        _admin(server, f'CREATE DATABASE "{name}"')
    except Exception as exc:  # pragma: no cover - environment problem
        pytest.fail(f"PostgreSQL is not reachable at {server}: {exc}")
    upgrade(f"{server}/{name}")
    yield server, name
    _admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def postgres_url(postgres_template: tuple[str, str]) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for one test."""
    server, template = postgres_template
    name = f"soro_test_{uuid.uuid4().hex[:10]}"
    _admin(server, f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    yield f"{server}/{name}"
    _admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'soro.db'}"
    upgrade(url)
    return url


@pytest.fixture
def stream_prefix() -> Iterator[str]:
    """A private key prefix per test, so tests share one Redis without seeing each other's streams."""
    yield f"test-{uuid.uuid4().hex[:12]}"
