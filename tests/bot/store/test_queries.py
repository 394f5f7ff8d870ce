"""The message path's statements on a PostgreSQL that already knows many users: each message reads a few
pages, however many rows there are (every accept runs them, so a scan would grow with the whole country)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from bench.accept import KNOWN_CHATS, add_known_users
from bot.store import queries
from tests.support.pages import pages_read


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
