"""`soro db upgrade` builds exactly the schema the models describe, on PostgreSQL and on SQLite."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from bot.store.models import Base


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
