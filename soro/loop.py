"""How the serving processes run: on uvloop, with a garbage collector that leaves their long-lived objects be.

The bot and the worker spend a large share of their CPU in the event loop itself (a wake-up for every socket
read of every webhook, SQL statement and Redis reply); uvloop does that work in C at a fraction of asyncio's
cost. Where it cannot be installed, asyncio's own loop runs the same code.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # a platform without a uvloop build: the standard loop
        return None
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T]) -> T:
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)


# Objects a collection of the youngest generation waits for. The default, 700, collects every few messages;
# each message makes short-lived objects by the hundred, nearly all of them freed by reference counting alone.
YOUNGEST_GENERATION_THRESHOLD = 10_000


def settle_heap() -> None:
    """Once a process has built what it keeps until it exits (aiogram's models alone are tens of thousands of
    objects), move all of it out of the collector's sight and collect less often. In the accept benchmark the
    collections walking that heap again and again took about a quarter of the bot's CPU, and made its slowest
    answers (bench/RESULTS.md)."""
    gc.freeze()
    gc.set_threshold(YOUNGEST_GENERATION_THRESHOLD, 20, 20)
