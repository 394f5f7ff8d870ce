"""``soro bot --processes N``: N bot processes behind one port, so accepting messages uses every core.

Each process binds the HTTP port with ``SO_REUSEPORT`` and the kernel spreads incoming connections over them.
All of them accept (webhook, SMS endpoints); the first also runs the delivery loop and its housekeeping and
sets the webhook. One deliverer per bot is what Telegram allows anyway (about 30 messages a second per bot,
one a second per chat, counted by that process's limiter) and it keeps each answer's previews in one process,
so a group chat's preview message becomes its answer. Reply streams are read through a consumer group, and a
final answer is sent only by whoever claims it in SQL, so a restarted deliverer, or bots on several hosts,
still send each answer once. The parent only supervises: a process that dies is started again.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import time
from multiprocessing.process import BaseProcess
from types import FrameType

log = logging.getLogger(__name__)

RESTART_DELAY_SECONDS = 1.0


def _serve(index: int, count: int) -> None:
    from bot.app import run_bot
    from soro.logs import setup_logging
    from soro.loop import run
    from soro.settings import Settings

    settings = Settings()
    setup_logging(settings.log_level)
    run(run_bot(settings, process_index=index, processes=count))


def run_processes(count: int) -> int:
    """Run ``count`` bot processes until SIGTERM or SIGINT; their exit status (0 when all ended cleanly)."""
    context = multiprocessing.get_context("spawn")  # a fresh interpreter each: no event loop or pool inherited
    stopping = False

    def start(index: int) -> BaseProcess:
        process = context.Process(target=_serve, args=(index, count), name=f"soro-bot-{index}")
        process.start()
        return process

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for process in processes:
            if process.is_alive() and process.pid is not None:
                process.terminate()

    processes = [start(index) for index in range(count)]
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("%d bot processes on one port", count)
    while not stopping:
        for index, process in enumerate(processes):
            if not process.is_alive() and not stopping:
                log.error("bot process %d exited (%s); starting it again", index, process.exitcode)
                time.sleep(RESTART_DELAY_SECONDS)
                processes[index] = start(index)
        time.sleep(0.2)
    for process in processes:
        process.join(timeout=30)
        if process.is_alive():
            process.kill()
            process.join()
    return max((abs(p.exitcode or 0) for p in processes if p.exitcode != -signal.SIGTERM), default=0)
