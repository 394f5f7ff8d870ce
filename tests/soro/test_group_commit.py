"""Group commit on its own: calls that arrive together share one run, and each caller hears its own outcome."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from soro.group_commit import GroupCommit


async def test_calls_arriving_during_a_batch_make_the_next_one_and_none_is_left_waiting() -> None:
    batches: list[list[int]] = []

    async def run(jobs: Sequence[int]) -> list[int | BaseException]:
        batches.append(list(jobs))
        await asyncio.sleep(0.01)  # a commit
        return [ValueError(job) if job == 13 else job * 2 for job in jobs]

    group: GroupCommit[int, int] = GroupCommit(run, linger=0.001, max_batch=8, concurrency=2)
    first = [asyncio.ensure_future(group.submit(job)) for job in range(10)]
    await asyncio.sleep(0.005)  # while the first batches commit
    later = [asyncio.ensure_future(group.submit(job)) for job in range(10, 20)]
    results = await asyncio.gather(*first, *later, return_exceptions=True)
    assert results[:13] == [job * 2 for job in range(13)] and isinstance(results[13], ValueError)
    assert results[14:] == [job * 2 for job in range(14, 20)]
    assert max(len(batch) for batch in batches) <= 8 and len(batches) < 20
    # Calls that come one by one, each as the previous batch ends, are all answered.
    for job in range(100, 150):
        assert await asyncio.wait_for(group.submit(job), 1) == job * 2
    assert group.draining == 0


async def test_a_failed_batch_fails_each_of_its_callers() -> None:
    async def run(jobs: Sequence[int]) -> list[int | BaseException]:
        raise ConnectionError("database went away")

    group: GroupCommit[int, int] = GroupCommit(run)
    results = await asyncio.gather(*(group.submit(job) for job in range(3)), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)


async def test_without_linger_a_lone_call_runs_at_once_and_calls_made_meanwhile_go_together() -> None:
    batches: list[list[int]] = []
    release = asyncio.Event()

    async def run(jobs: Sequence[int]) -> list[int | BaseException]:
        batches.append(list(jobs))
        await release.wait()  # a round trip under way
        return list(jobs)

    group: GroupCommit[int, int] = GroupCommit(run, linger=0)
    lone = asyncio.ensure_future(group.submit(0))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert batches == [[0]]  # nobody waited for company
    meanwhile = [asyncio.ensure_future(group.submit(job)) for job in range(1, 6)]
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(lone, *meanwhile) == [0, 1, 2, 3, 4, 5]
    assert batches == [[0], [1, 2, 3, 4, 5]]


async def test_a_lone_call_at_rest_goes_at_once_and_calls_under_load_wait_for_company() -> None:
    batches: list[list[int]] = []

    async def run(jobs: Sequence[int]) -> list[int | BaseException]:
        batches.append(list(jobs))
        return list(jobs)

    group: GroupCommit[int, int] = GroupCommit(run, linger=30, max_batch=4)
    # A quiet server: nobody else is coming, so the one message is not held back by the linger.
    assert await asyncio.wait_for(group.submit(0), 1) == 0
    assert await asyncio.wait_for(group.submit(1), 1) == 1
    # Calls that arrive together fill one batch.
    assert await asyncio.wait_for(asyncio.gather(*(group.submit(job) for job in range(2, 6))), 1) == [2, 3, 4, 5]
    # Right after a busy batch, the next call waits for the ones that follow it.
    after_load = asyncio.ensure_future(group.submit(6))
    await asyncio.sleep(0.05)
    assert not after_load.done()
    rest = [asyncio.ensure_future(group.submit(job)) for job in range(7, 10)]
    assert await asyncio.wait_for(asyncio.gather(after_load, *rest), 1) == [6, 7, 8, 9]
    assert batches == [[0], [1], [2, 3, 4, 5], [6, 7, 8, 9]]


async def test_jobs_nobody_waits_on_wait_for_company_even_at_rest() -> None:
    batches: list[list[int]] = []

    async def run(jobs: Sequence[int]) -> list[int | BaseException]:
        batches.append(list(jobs))
        return list(jobs)

    group: GroupCommit[int, int] = GroupCommit(run, linger=0.2, max_batch=8, lone_at_once=False)
    first = asyncio.ensure_future(group.submit(0))
    await asyncio.sleep(0.05)
    assert not first.done()  # held for the linger, though it came alone
    second = asyncio.ensure_future(group.submit(1))  # a moment later: same batch
    assert await asyncio.wait_for(asyncio.gather(first, second), 1) == [0, 1]
    assert batches == [[0, 1]]
