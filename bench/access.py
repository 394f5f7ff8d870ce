"""Cost of the block / allow-list check that every incoming message passes (``bot.access``).

The rules live in memory; every few seconds SQL is asked whether they changed, and read again only if so. This
measures a check against the cached rules, the first load, and a refresh that finds nothing changed, for a few
rule-table sizes, on SQLite.

    python bench/access.py
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from redis.asyncio import Redis

from bot.access import AccessControl
from bot.limits import UserLimits
from bot.store.db import create_engine, session_factory
from bot.store.migrate import upgrade
from bot.store.models import AccessRule
from soro.settings import Settings

CHECKS = 200_000


async def measure(rules: int, pilot: bool) -> tuple[float, float, float]:
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"
        await asyncio.to_thread(upgrade, url)
        engine = create_engine(url)
        sessions = session_factory(engine)
        async with sessions() as session, session.begin():
            session.add_all(
                AccessRule(channel="telegram", address=str(10_000 + i), blocked=not pilot, allowed=pilot)
                for i in range(rules)
            )
        settings = Settings(_env_file=None, allow_list=["1"] if pilot else [])  # type: ignore[call-arg]
        # Redis is only touched for the daily notice of a refused address, which this loop never asks for.
        access = AccessControl(settings, sessions, UserLimits(Redis(), "bench", 1, 1), refresh_seconds=3600)
        started = time.perf_counter()
        await access.decide("telegram", "5")
        reload_ms = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        for i in range(CHECKS):
            await access.decide("telegram", str(i))
        per_check_us = (time.perf_counter() - started) / CHECKS * 1e6
        access.refresh_seconds = 0.0  # the next check asks SQL whether anything changed
        started = time.perf_counter()
        await access.decide("telegram", "5")
        unchanged_ms = (time.perf_counter() - started) * 1000
        await engine.dispose()
        return per_check_us, reload_ms, unchanged_ms


async def main() -> None:
    print(f"{'rules':>7}  {'mode':<5}  {'check (µs)':>10}  {'load (ms)':>9}  {'refresh, unchanged (ms)':>23}")
    for rules in (0, 100, 10_000):
        for pilot in (False, True):
            per_check, reload_ms, unchanged_ms = await measure(rules, pilot)
            mode = "allow" if pilot else "block"
            print(f"{rules:>7}  {mode:<5}  {per_check:>10.2f}  {reload_ms:>9.1f}  {unchanged_ms:>23.1f}")


if __name__ == "__main__":
    asyncio.run(main())
