"""`soro db upgrade` builds exactly the schema the models describe, on PostgreSQL and on SQLite, keeping data."""

import asyncio
import uuid
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from bot.store.migrate import alembic_config, upgrade
from bot.store.models import Base
from tests.conftest import _admin


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)


def _differences(connection: Connection) -> list[object]:
    return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))


async def _assert_matches(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            assert await connection.run_sync(_differences) == []
    finally:
        await engine.dispose()


async def test_migrations_match_the_models_on_postgresql(postgres_url: str) -> None:
    await _assert_matches(postgres_url)


async def test_migrations_match_the_models_on_sqlite(sqlite_url: str) -> None:
    await _assert_matches(sqlite_url)


# 0002 on a database that already holds conversations: every row survives, the new columns start empty.

ROWS_0001 = [
    "INSERT INTO users (id, channel, address, language, opted_out, created_at) "
    "VALUES (1, 'telegram', '1001', 'tg', false, '2026-11-30 10:00:00+00')",
    "INSERT INTO conversations (id, user_id, active, started_at) VALUES (1, 1, true, '2026-11-30 10:00:00+00')",
    "INSERT INTO requests (id, conversation_id, state, payload, reply_stream, received_at, deadline, "
    "state_changed_at) VALUES ('r-1', 1, 'answered', '{}', 'soro:replies:telegram', '2026-11-30 10:00:00+00', "
    "'2026-11-30 10:02:00+00', '2026-11-30 10:00:05+00')",
    "INSERT INTO messages (id, conversation_id, role, text, created_at, request_id, answer_of, model, latency_ms) "
    "VALUES (1, 1, 'user', 'Салом', '2026-11-30 10:00:00+00', 'r-1', NULL, NULL, NULL), "
    "(2, 1, 'assistant', 'Салом! Чӣ хизмат?', '2026-11-30 10:00:05+00', 'r-1', 'r-1', 'soro', 5000)",
]


def _execute(url: str, *statements: str) -> list[tuple[object, ...]]:
    async def run() -> list[tuple[object, ...]]:
        engine = create_async_engine(url)
        try:
            async with engine.begin() as connection:
                rows: list[tuple[object, ...]] = []
                for statement in statements:
                    result = await connection.execute(text(statement))
                    if result.returns_rows:
                        rows = [tuple(row) for row in result]
                return rows
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _upgrade_keeps_data(url: str) -> None:
    upgrade(url, "0001")
    _execute(url, *ROWS_0001)
    upgrade(url, "0002")
    assert _execute(url, "SELECT id, role, text, model, latency_ms, prompt_version FROM messages ORDER BY id") == [
        (1, "user", "Салом", None, None, None),
        (2, "assistant", "Салом! Чӣ хизмат?", "soro", 5000, None),
    ]
    assert _execute(url, "SELECT id, state, model, prompt_version FROM requests") == [("r-1", "answered", None, None)]
    # The new tables work on the old rows: a vote on the old answer, a block of its user.
    _execute(
        url,
        "INSERT INTO feedback (message_id, vote, voter, created_at, updated_at) "
        "VALUES (2, 'up', '1001', '2026-11-30 11:00:00+00', '2026-11-30 11:00:00+00')",
        "INSERT INTO access_rules (channel, address, blocked, allowed, notified, changed_at) "
        "VALUES ('telegram', '1001', true, false, false, '2026-11-30 11:00:00+00')",
    )
    assert _execute(url, "SELECT message_id, vote FROM feedback") == [(2, "up")]
    assert _execute(url, "SELECT count(*) FROM users") == [(1,)]
    downgrade(url, "0001")
    assert _execute(url, "SELECT text FROM messages ORDER BY id") == [("Салом",), ("Салом! Чӣ хизмат?",)]


def test_0002_keeps_data_on_postgresql(postgres_template: tuple[str, str]) -> None:
    server, _ = postgres_template
    name = f"soro_migrate_{uuid.uuid4().hex[:10]}"
    _admin(server, f'CREATE DATABASE "{name}"')
    try:
        _upgrade_keeps_data(f"{server}/{name}")
    finally:
        _admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_0002_keeps_data_on_sqlite(tmp_path: Path) -> None:
    _upgrade_keeps_data(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
