"""``soro`` verbs as subprocesses, started exactly as compose starts them (the installed console script).

``SoroProcess`` is one such process that a test kills (-9) and restarts: everything it writes goes to one log
file, every run appended, so a test can read what it said across its restarts (and what it must never say).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

SORO = [str(Path(sys.executable).with_name("soro"))]


def soro_env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SORO_")}
    env.update({f"SORO_{k.upper()}": v for k, v in values.items()})
    env["PYTHONUNBUFFERED"] = "1"
    return env


async def run(*args: str, env: dict[str, str], stdin: bytes | None = None, timeout: float = 120) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *SORO,
        *args,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(stdin), timeout)
    return process.returncode or 0, out.decode()


class Processes:
    """``soro`` verbs as subprocesses, each logging to its own file; stopped by pid at the end."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.running: list[tuple[str, asyncio.subprocess.Process]] = []

    async def start(self, verb: str, **env: str) -> asyncio.subprocess.Process:
        with (self.logs / f"{verb}-{len(self.running)}.log").open("wb") as log:  # the child keeps its own copy
            process = await asyncio.create_subprocess_exec(
                *SORO, verb, env={**self.env, **env}, stdout=log, stderr=asyncio.subprocess.STDOUT
            )
        self.running.append((verb, process))
        return process

    def log(self, process: asyncio.subprocess.Process) -> str:
        index = [p for _, p in self.running].index(process)
        verb = self.running[index][0]
        return (self.logs / f"{verb}-{index}.log").read_text()

    async def stop_all(self) -> list[int]:
        for _, process in self.running:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
        return [await asyncio.wait_for(process.wait(), 60) for _, process in self.running]


@dataclass
class SoroProcess:
    name: str
    verb: str
    env: dict[str, str]
    log: Path
    process: asyncio.subprocess.Process | None = None
    starts: int = 0
    kills: int = 0
    # Exits nobody asked for: (return code, seconds since start) of each.
    unexpected_exits: list[tuple[int, float]] = field(default_factory=list)
    _started_at: float = 0.0
    _watch: asyncio.Task[None] | None = None
    _expect_exit: bool = False

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    async def start(self) -> None:
        assert not self.running, f"{self.name} is running already"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            out.write(f"----- start {self.starts + 1} of {self.name} -----\n".encode())
            out.flush()
            self.process = await asyncio.create_subprocess_exec(
                *SORO, self.verb, env=self.env, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out
            )
        self.starts += 1
        self._started_at = time.monotonic()
        self._expect_exit = False
        self._watch = asyncio.create_task(self._watch_exit(self.process))

    async def _watch_exit(self, process: asyncio.subprocess.Process) -> None:
        code = await process.wait()
        if not self._expect_exit:
            self.unexpected_exits.append((code, time.monotonic() - self._started_at))

    async def kill(self) -> None:
        """kill -9, as the OOM killer or a power cut would: nothing is flushed, acked or said."""
        if self.running:
            assert self.process is not None
            self._expect_exit = True
            self.process.send_signal(signal.SIGKILL)
            await self.process.wait()
            self.kills += 1
        await self._settle()

    async def stop(self, timeout: float = 20) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout``; the return code of the SIGTERM, None if it had to be killed."""
        if not self.running:
            await self._settle()
            return None
        assert self.process is not None
        self._expect_exit = True
        self.process.send_signal(signal.SIGTERM)
        try:
            code: int | None = await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            code = None
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGKILL)
            await self.process.wait()
        await self._settle()
        return code

    async def _settle(self) -> None:
        if self._watch is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
            self._watch = None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""
