"""Async engine and session factory for the bot's database."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine


def create_engine(url: str) -> AsyncEngine:
    """The engine of a bot-side process. Its errors never quote a statement's parameters (message text, phone
    numbers), whichever code path logs them."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # One writer at a time: wait for the lock instead of failing, and let readers go on meanwhile.
        engine = create_async_engine(url, connect_args={"timeout": 30}, hide_parameters=True)

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    engine = create_async_engine(url, pool_size=20, max_overflow=30, hide_parameters=True)

    @event.listens_for(engine.sync_engine, "checkout")
    def _alive(dbapi_connection, _record, _proxy):  # type: ignore[no-untyped-def]
        # Not pool_pre_ping: SQLAlchemy's ping on asyncpg is three round trips a checkout (BEGIN, the ping,
        # ROLLBACK), more than a claim or a small accept costs in all. A backend that PostgreSQL ended, or a
        # server that restarted, closed its socket, which asyncpg has seen already: the pool connects anew.
        if dbapi_connection.driver_connection.is_closed():
            raise DisconnectionError

    return engine


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
