"""``bench/accept.py`` keeps working: a short run against a real ``soro bot`` process on SQLite."""

from __future__ import annotations

from bench.accept import main, parse_args


async def test_a_short_accept_benchmark_stores_and_enqueues_every_update(redis_url: str) -> None:
    flags = "--databases sqlite --updates 30 --warmup 4 --concurrency 8 --known-users 50".split()
    args = parse_args([*flags, "--redis-url", redis_url])
    [row] = await main(args)
    assert (row.updates, row.stored, row.enqueued) == (30, 30, 30)
    assert row.cpu_seconds > 0 and row.rss_after > 100 << 20  # read from the bot process, not this one


async def test_returning_chats_post_their_next_turns(redis_url: str) -> None:
    flags = "--databases sqlite --updates 20 --warmup 4 --concurrency 8 --returning".split()
    [row] = await main(parse_args([*flags, "--redis-url", redis_url]))
    # A chat whose turn was still in flight would join it: no new turn in the stream.
    assert (row.updates, row.stored, row.enqueued) == (20, 20, 20)
