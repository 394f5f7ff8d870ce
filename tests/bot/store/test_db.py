"""The bot's engine: a connection PostgreSQL ended is replaced before anyone uses it, at no round trip."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from bot.store.db import create_engine


async def test_a_pooled_connection_postgresql_ended_is_replaced_at_checkout(postgres_url: str) -> None:
    engine, killer = create_engine(postgres_url), create_engine(postgres_url)
    try:
        async with engine.connect() as connection:
            first = await connection.scalar(text("SELECT pg_backend_pid()"))
        async with killer.connect() as connection:  # an operator, or a restart, ends it while it sits in the pool
            await connection.execute(text(f"SELECT pg_terminate_backend({first})"))
        await asyncio.sleep(0.2)  # the closed socket reaches the event loop

        async with engine.begin() as connection:
            second = await connection.scalar(text("SELECT pg_backend_pid()"))

        assert second != first
        assert engine.pool.checkedin() == 1  # the dead one is gone, not kept beside the new one
    finally:
        await engine.dispose()
        await killer.dispose()
