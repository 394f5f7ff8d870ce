"""``soro`` verbs as real processes, as compose runs them: started, killed (-9) and restarted by tests.

Everything a process writes goes to one log file per process name, every run of it appended, so a test can
read what each process said across its restarts (and check what it must never say).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

SORO = str(Path(sys.executable).with_name("soro"))  # the installed console script


def soro_env(values: Mapping[str, str]) -> dict[str, str]:
    """This environment without any SORO_ variable of its own, plus ``values`` (names without the prefix)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SORO_")}
    env.update({f"SORO_{k.upper()}": v for k, v in values.items()})
    env["PYTHONUNBUFFERED"] = "1"
    return env


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
                SORO, self.verb, env=self.env, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out
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
