"""Migration 0003 (the script of answers, messages as typed) keeps every row, up and down, on both backends."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.store.migrate import alembic_config, upgrade

_ROWS = [
    "INSERT INTO users (id, channel, address, language, opted_out, created_at) "
    "VALUES (1, 'telegram', '42', 'ru', false, '2026-11-30 10:00:00+00')",
    "INSERT INTO conversations (id, user_id, active, started_at) VALUES (1, 1, true, '2026-11-30 10:00:00+00')",
    "INSERT INTO messages (id, conversation_id, role, text, created_at) "
    "VALUES (1, 1, 'user', 'Салом, чӣ хел?', '2026-11-30 10:00:01+00')",
]


async def _execute(url: str, statements: list[str]) -> list[tuple[object, ...]]:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            rows: list[tuple[object, ...]] = []
            for statement in statements:
                result = await connection.execute(text(statement))
                if result.returns_rows:
                    rows += [tuple(row) for row in result]
            return rows
    finally:
        await engine.dispose()


@pytest.fixture(params=["postgresql", "sqlite"])
def empty_database(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'soro.db'}"
        return
    server = "postgresql+asyncpg://postgres@127.0.0.1:5432"
    name = f"soro_test_{uuid.uuid4().hex[:10]}"
    admin = f"{server}/postgres"

    async def admin_run(statement: str) -> None:
        engine = create_async_engine(admin, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as connection:
                await connection.execute(text(statement))
        finally:
            await engine.dispose()

    asyncio.run(admin_run(f'CREATE DATABASE "{name}"'))
    yield f"{server}/{name}"
    asyncio.run(admin_run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_upgrading_and_downgrading_keeps_the_users_and_their_messages(empty_database: str) -> None:
    url = empty_database
    upgrade(url, "0001")
    asyncio.run(_execute(url, _ROWS))

    upgrade(url, "0003")
    after = asyncio.run(
        _execute(
            url,
            [
                "SELECT language, script, writes_latin FROM users WHERE id = 1",
                "SELECT text, typed_text FROM messages WHERE id = 1",
            ],
        )
    )
    assert after == [("ru", None, None), ("Салом, чӣ хел?", None)]
    asyncio.run(_execute(url, ["UPDATE users SET script = 'latn', writes_latin = true WHERE id = 1"]))

    command.downgrade(alembic_config(url), "0001")
    before = asyncio.run(_execute(url, ["SELECT language FROM users", "SELECT text FROM messages"]))
    assert before == [("ru",), ("Салом, чӣ хел?",)]
