"""Group commit: calls that arrive together share one transaction (the idea of PostgreSQL's ``commit_delay``),
or one Redis pipeline.

A caller hands in a job and waits for its own result. When calls are coming together (more than one is
waiting, another batch is running, or the last batch held more than one) the first job of a batch waits
``linger`` seconds for others (or until ``max_batch`` are in); then one ``run`` call does them all: one
transaction, one commit, one Redis pipeline. While a batch runs, the next one gathers, so under load batches
grow by themselves. A lone call at rest goes at once: waiting for company that is not coming would only add
``linger`` to every message on a quiet server. Jobs no caller waits on (``lone_at_once=False``: marks written
off the callers' path) always wait ``linger``, so that those of a busy second share one transaction. With
``concurrency`` above one, that many batches run at once, each in its own transaction: round trips to the
database, not its CPU, bound a single batch of sequential statements. ``run`` answers each job on its own: a
result or the exception that job alone failed with; an exception from ``run`` itself fails the whole batch.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

J = TypeVar("J")
R = TypeVar("R")


class GroupCommit(Generic[J, R]):
    def __init__(
        self,
        run: Callable[[Sequence[J]], Awaitable[Sequence[R | BaseException]]],
        linger: float = 0.001,
        max_batch: int = 128,
        concurrency: int = 1,
        lone_at_once: bool = True,
    ) -> None:
        self.run = run
        self.linger = linger
        self.lone_at_once = lone_at_once
        self.max_batch = max_batch
        self.concurrency = concurrency  # batches at once, each its own transaction
        self.waiting: list[tuple[J, asyncio.Future[R]]] = []
        self.full = asyncio.Event()
        self.draining = 0  # drainers running: counted in step with their loop, not when their task is done
        self.drainers: set[asyncio.Task[None]] = set()
        self.last_size = 0  # jobs in the last batch: more than one means calls are still coming together
        self.batches = 0  # how many batches ran, and the most jobs one of them held: for tests and benchmarks
        self.largest = 0

    async def submit(self, job: J) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self.waiting.append((job, future))
        if len(self.waiting) >= self.max_batch:
            self.full.set()
        if self.draining < self.concurrency:
            self.draining += 1
            drainer = asyncio.create_task(self._drain())
            self.drainers.add(drainer)
            drainer.add_done_callback(self.drainers.discard)
        # A caller that goes away (its client hung up) must not cancel the batch the others are in.
        return await asyncio.shield(future)

    async def _drain(self) -> None:
        try:
            while self.waiting:
                if len(self.waiting) < self.max_batch and self.linger > 0 and self._coming_together():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.full.wait(), self.linger)
                batch, self.waiting = self.waiting[: self.max_batch], self.waiting[self.max_batch :]
                if len(self.waiting) < self.max_batch:
                    self.full.clear()
                if not batch:  # another drainer took them meanwhile
                    return
                self.last_size = len(batch)
                self.batches += 1
                self.largest = max(self.largest, len(batch))
                await self._run(batch)
        finally:
            # No await between the loop's last look at ``waiting`` and this: a job that arrives after it
            # starts a drainer of its own.
            self.draining -= 1

    def _coming_together(self) -> bool:
        return not self.lone_at_once or len(self.waiting) > 1 or self.draining > 1 or self.last_size > 1

    async def _run(self, batch: list[tuple[J, asyncio.Future[R]]]) -> None:
        try:
            outcomes = await self.run([job for job, _ in batch])
        except BaseException as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if future.done():
                continue
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
