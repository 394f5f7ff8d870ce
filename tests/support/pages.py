"""How many pages of PostgreSQL a piece of code's SELECTs touch: a scan that grows with the table shows here."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine


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
