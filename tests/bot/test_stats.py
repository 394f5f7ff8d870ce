"""The operators' day report on a PostgreSQL that holds months of messages: it reads the day, not the months."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, async_sessionmaker, create_async_engine

from bot.stats import Traffic, traffic_since
from bot.store.models import utcnow
from tests.support.pages import pages_read

OLD_MESSAGES = 100_000
TODAY = 15  # questions today, each answered

# Months of messages of one conversation, a second apart, then today's questions and answers.
HISTORY = [
    "INSERT INTO users (id, channel, address, language, opted_out, created_at) "
    "VALUES (1, 'telegram', '1001', 'tg', false, now() - interval '60 days')",
    "INSERT INTO conversations (id, user_id, active, started_at) VALUES (1, 1, true, now() - interval '60 days')",
    "INSERT INTO messages (conversation_id, role, text, created_at) "
    "SELECT 1, CASE WHEN g % 2 = 0 THEN 'user' ELSE 'assistant' END, "
    "'Як ҷавоби кӯтоҳ, ки дар таърихи сӯҳбат мемонад.', now() - interval '50 days' + g * interval '1 second' "
    f"FROM generate_series(1, {OLD_MESSAGES}) AS g",
    "INSERT INTO messages (conversation_id, role, text, created_at, model, latency_ms) "
    "SELECT 1, role, 'Салом!', now() - interval '1 hour' + g * interval '1 minute', "
    "CASE WHEN role = 'assistant' THEN 'soro' END, CASE WHEN role = 'assistant' THEN 2000 END "
    f"FROM generate_series(1, {TODAY}) AS g, (VALUES ('user'), ('assistant')) AS roles(role)",
]


async def test_the_day_report_reads_the_day_not_every_message(postgres_url: str) -> None:
    engine = create_async_engine(postgres_url)
    try:
        async with engine.begin() as connection:
            for statement in HISTORY:
                await connection.execute(text(statement))
        async with engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text("VACUUM ANALYZE messages"))
        report: list[Traffic] = []

        async def day(_: AsyncConnection) -> None:
            report.append(await traffic_since(async_sessionmaker(engine), utcnow() - timedelta(days=1)))

        pages = await pages_read(engine, day)
        [traffic] = report
        assert (traffic.messages, traffic.answers) == (TODAY, TODAY)
        assert [(m.model, m.answers) for m in traffic.models] == [("soro", TODAY)]
        assert traffic.median_latency == 2.0
        # Each statement reads the block range of the last hour (128 pages at most: 29 here) and the index that
        # finds it. Without the index each scanned every message: 1,819 pages for these 100,030.
        assert pages and max(pages) <= 150, pages
    finally:
        await engine.dispose()
