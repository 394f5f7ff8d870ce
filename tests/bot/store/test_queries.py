"""The message path's statements on a PostgreSQL that already knows many users: each message reads a few
pages, however many rows there are (every accept runs them, so a scan would grow with the whole country)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from bench.accept import KNOWN_CHATS, add_known_users
from bot.store import queries


async def pages_read(engine: AsyncEngine, run: Callable[[AsyncConnection], Awaitable[Any]]) -> list[int]:
    """Run ``run`` in a transaction, then each SELECT it sent once more under EXPLAIN (ANALYZE, BUFFERS): the
    pages each one touched."""
    selects: list[tuple[str, Any]] = []

    def sent(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            selects.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", sent)
    try:
        async with engine.begin() as connection:
            await run(connection)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", sent)
    pages = []
    async with engine.connect() as connection:
        for statement, parameters in selects:
            result = await connection.exec_driver_sql(
                f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {statement}", parameters
            )
            explained = result.scalar_one()  # decoded by the driver, or text
            plan = (json.loads(explained) if isinstance(explained, str) else explained)[0]["Plan"]
            pages.append(plan["Shared Hit Blocks"] + plan["Shared Read Blocks"])
    return pages


async def test_users_are_found_through_their_key_not_by_reading_every_user(postgres_url: str) -> None:
    await add_known_users(postgres_url, 20_000)
    engine = create_async_engine(postgres_url)
    first, last = str(KNOWN_CHATS), str(KNOWN_CHATS + 19_999)
    try:
        wanted = {("telegram", first): None, ("telegram", last): None, ("telegram", "new-one"): None}
        found: dict[tuple[str, str], queries.UserRow] = {}

        async def look_up(connection: AsyncConnection) -> None:
            found.update(await queries.users_of(connection, wanted))

        pages = await pages_read(engine, look_up)
        assert not found["telegram", first].created and not found["telegram", last].created
        assert found["telegram", "new-one"].created
        # Three keys through the (channel, address) index: a few pages each. Reading the address alone walked
        # the whole index, about a hundred pages for these 20,000 users.
        assert pages and max(pages) <= 15, pages
    finally:
        await engine.dispose()
