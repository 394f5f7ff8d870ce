"""``soro`` verbs as subprocesses, started exactly as compose starts them (the installed console script)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
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
