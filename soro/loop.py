"""The event loop of the serving processes: uvloop, libuv's loop in C.

The bot and the worker spend a large share of their CPU in the event loop itself (a wake-up for every socket
read of every webhook, SQL statement and Redis reply); uvloop does that work in C at a fraction of asyncio's
cost. Where it cannot be installed, asyncio's own loop runs the same code.
"""

from __future__ import annotations

import asyncio
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
