"""vLLM's OpenAI-compatible server, run from its own virtual environment, and the tiny demo model it serves.

vLLM lives in its own venv (``SORO_VLLM_VENV``, made by ``scripts/setup-vllm.sh``) because it pins its own torch
and a transformers older than the training stack wants, exactly as production runs it in its own container.
Nothing here imports torch: models are built by running ``training/tiny.py`` with that venv's interpreter.

Concurrency: vLLM batches at most ``--max-num-seqs`` sequences (``VllmOptions.max_num_seqs``); requests beyond
that wait inside vLLM, invisible and lost if it restarts. Run the inference workers with
``SORO_WORKER_CONCURRENCY`` equal to (or just under) the server's ``max_num_seqs`` so the backlog waits in
Redis instead. ``VllmOptions.for_settings`` does exactly that for the demo: it starts vLLM with
``--max-num-seqs`` = ``settings.worker_concurrency``.

Start-up on 2 CPU cores takes 35–70 s; vLLM's compile cache in ``~/.cache/vllm`` saves about 20 s of it, so it
is kept between runs. ``/health`` answers OK before the engine can serve (a model vLLM's CPU attention rejects
fails only at the first request), so a server counts as ready only after a real chat completion.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import fcntl
import hashlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import aiohttp

import training
from soro.ports import free_port
from soro.settings import Settings
from training.assets import TAJIK_SAMPLE

# The builder runs as a file in vLLM's venv, so it must not need the project on that venv's path. Found, not
# imported: importing it would import torch.
TINY_BUILDER = Path(training.__file__).with_name("tiny.py")
DEMO_TRAIN_SECONDS = 75.0
DEMO_SEED = 0
_LOG_TAIL_LINES = 40

logger = logging.getLogger(__name__)


class VllmError(RuntimeError):
    """vLLM could not be set up, started or reached; the message says why and what to do."""


def vllm_python(venv: Path) -> Path:
    """The interpreter of vLLM's venv, or a clear error naming the set-up script."""
    python = venv / "bin" / "python"
    if not python.is_file():
        raise VllmError(f"vLLM's virtual environment was not found at {venv}: run scripts/setup-vllm.sh")
    return python


@dataclass(frozen=True)
class VllmOptions:
    """How to start one vLLM server (the command-line flags that matter to Soro)."""

    model_dir: Path
    served_model_name: str
    venv: Path
    log_path: Path
    host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    max_model_len: int = 512
    # The batch vLLM runs at once; match the workers' concurrency to it (see the module docstring).
    max_num_seqs: int = 64
    kv_cache_gib: int = 1
    # Eager mode skips torch.compile's warm-up (20–45 s on 2 cores; vLLM 0.32's CPU build fails to reload its
    # compile cache anyway), and running the model in the engine process instead of a separate worker saves
    # one more interpreter importing torch and vLLM. Neither slows the tiny models served locally.
    enforce_eager: bool = True
    single_process_executor: bool = True
    ready_timeout_seconds: float = 300.0
    extra_args: tuple[str, ...] = ()

    @classmethod
    def for_settings(cls, settings: Settings, model_dir: Path, served_model_name: str) -> VllmOptions:
        """Options for a local server that the workers of ``settings`` keep exactly full."""
        return cls(
            model_dir=model_dir,
            served_model_name=served_model_name,
            venv=settings.vllm_venv,
            log_path=settings.cache_dir / "logs" / f"vllm-{served_model_name}.log",
            max_num_seqs=settings.worker_concurrency,
        )

    def command(self) -> list[str]:
        # -P keeps the working directory off sys.path: the repo's own packages must not shadow vLLM's imports.
        return [
            str(vllm_python(self.venv)),
            "-P",
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            str(self.model_dir),
            "--served-model-name",
            self.served_model_name,
            "--dtype",
            "float32",
            "--max-model-len",
            str(self.max_model_len),
            "--max-num-seqs",
            str(self.max_num_seqs),
            "--host",
            self.host,
            "--port",
            str(self.port),
            *(["--enforce-eager"] if self.enforce_eager else []),
            *(["--distributed-executor-backend", "uni"] if self.single_process_executor else []),
            *self.extra_args,
        ]

    def environment(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if key not in {"PYTHONPATH", "PYTHONHOME"}}
        env.update(
            VIRTUAL_ENV=str(self.venv),
            PATH=f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
            VLLM_CPU_KVCACHE_SPACE=str(self.kv_cache_gib),
            HF_HUB_OFFLINE="1",
            TRANSFORMERS_OFFLINE="1",
            VLLM_NO_USAGE_STATS="1",
            DO_NOT_TRACK="1",
            # Unbuffered, so the log holds the last lines before a crash, which the start-up error quotes.
            PYTHONUNBUFFERED="1",
        )
        return env


class VllmServer:
    """One vLLM OpenAI-compatible server process, ready only once it has answered a real chat completion.

    ``async with VllmServer(options) as server:`` starts it and stops it (its whole process group) on exit.
    """

    def __init__(self, options: VllmOptions) -> None:
        self.options = options
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def root_url(self) -> str:
        return f"http://{self.options.host}:{self.options.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI API base URL (ends with ``/v1``), e.g. for ``SORO_LLM_BASE_URL``."""
        return f"{self.root_url}/v1"

    @property
    def model(self) -> str:
        return self.options.served_model_name

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    async def __aenter__(self) -> VllmServer:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Start the server and wait until it streams a real completion; on failure raise with its log tail."""
        if self._process is not None:
            raise VllmError("this vLLM server is already started")
        options = self.options
        if not (options.model_dir / "config.json").is_file():
            raise VllmError(f"no model folder at {options.model_dir} (config.json missing)")
        options.log_path.parent.mkdir(parents=True, exist_ok=True)
        # A plain Popen returns at once and, unlike asyncio's subprocesses, is not tied to the event loop that
        # started it: a session-wide test server outlives the loop of the test that first asked for it.
        with options.log_path.open("wb") as log:
            self._process = subprocess.Popen(  # noqa: ASYNC220
                options.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=options.environment(),
                cwd=options.log_path.parent,
                start_new_session=True,  # its own process group: stop() ends the engine core with it
                preexec_fn=_terminate_with_parent,
            )
        try:
            await self._wait_until_ready()
        except BaseException:
            await self.stop()
            raise

    async def stop(self, grace_seconds: float = 20.0) -> None:
        """Stop the server's process group: SIGTERM, then SIGKILL after ``grace_seconds``."""
        await asyncio.to_thread(self.stop_blocking, grace_seconds)

    def stop_blocking(self, grace_seconds: float = 20.0) -> None:
        """``stop`` for callers without an event loop (atexit hooks, sync fixtures)."""
        process, self._process = self._process, None
        if process is None:
            return
        # SIGTERM to the API server alone lets it shut its engine down in order; whatever of the group is
        # left after the grace period (or was orphaned by a crash) is killed.
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace_seconds)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def rss_bytes(self) -> int:
        """Resident memory of the server and its engine processes together (Linux ``/proc``)."""
        if self._process is None:
            return 0
        total = 0
        for status in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = status.read_text().rsplit(")", 1)[1].split()
                if int(fields[2]) == self._process.pid:  # field 5 of stat: the process group
                    total += int(fields[21]) * os.sysconf("SC_PAGE_SIZE")  # field 24: rss in pages
        return total

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        try:
            text = self.options.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    async def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.options.ready_timeout_seconds
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            while not await self._healthy(http):
                self._raise_if_exited()
                if time.monotonic() > deadline:
                    raise self._error(f"vLLM was not healthy after {self.options.ready_timeout_seconds:.0f} s")
                await asyncio.sleep(0.5)
            await self._smoke_test(http)

    async def _healthy(self, http: aiohttp.ClientSession) -> bool:
        try:
            async with http.get(f"{self.root_url}/health") as response:
                return response.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False

    async def _smoke_test(self, http: aiohttp.ClientSession) -> None:
        body = {
            "model": self.model,
            "messages": [{"role": "user", "content": "Салом"}],
            "max_tokens": 2,
        }
        try:
            async with http.post(f"{self.base_url}/chat/completions", json=body) as response:
                if response.status != 200:
                    detail = (await response.text())[:500]
                    raise self._error(f"vLLM is healthy but its first completion failed ({response.status}): {detail}")
                await response.json()
        except (aiohttp.ClientError, TimeoutError) as exc:
            self._raise_if_exited()
            raise self._error(f"vLLM is healthy but its first completion failed: {exc!r}") from exc

    def _raise_if_exited(self) -> None:
        if self._process is not None and (code := self._process.poll()) is not None:
            raise self._error(f"vLLM exited with code {code} before it was ready")

    def _error(self, what: str) -> VllmError:
        return VllmError(
            f"{what}; command: {' '.join(self.options.command())}\n"
            f"last lines of {self.options.log_path}:\n{self.log_tail()}"
        )


def _terminate_with_parent() -> None:
    """In the child before exec: get SIGTERM when the parent dies, even by SIGKILL, so no server is orphaned."""
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


_PR_SET_PDEATHSIG = 1


def build_tiny_model_dir(
    venv: Path,
    out_dir: Path,
    *,
    texts: Sequence[Path] = (TAJIK_SAMPLE,),
    train_seconds: float = 0.0,
    seed: int = 0,
) -> Path:
    """Run ``training/tiny.py`` with vLLM's interpreter, so the folder matches the transformers that serves it."""
    command = [str(vllm_python(venv)), "-P", str(TINY_BUILDER), "--out", str(out_dir)]
    for text in texts:
        command += ["--text", str(text)]
    command += ["--train-seconds", str(train_seconds), "--seed", str(seed)]
    env = {key: value for key, value in os.environ.items() if key not in {"PYTHONPATH", "PYTHONHOME"}}
    env.update(HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-_LOG_TAIL_LINES:])
        raise VllmError(f"building the tiny model failed ({done.returncode}): {' '.join(command)}\n{tail}")
    return out_dir


def demo_model_dir(settings: Settings) -> Path:
    """Where the demo model lives: named by a hash of what it is made from, so a change rebuilds it."""
    digest = hashlib.sha256()
    for part in (TAJIK_SAMPLE.read_bytes(), TINY_BUILDER.read_bytes(), f"{DEMO_TRAIN_SECONDS}:{DEMO_SEED}".encode()):
        digest.update(hashlib.sha256(part).digest())
    return settings.cache_dir / "models" / f"tiny-gemma3-tajik-{digest.hexdigest()[:12]}"


def ensure_demo_model(settings: Settings) -> Path:
    """The demo model folder, built on first use (about 1.5 min on 2 cores) and cached under ``cache_dir``.

    A tiny Gemma 3 trained for ``DEMO_TRAIN_SECONDS`` on the project's Tajik sample, so it babbles Tajik words.
    Blocking: from async code call it with ``await asyncio.to_thread(ensure_demo_model, settings)``.
    """
    target = demo_model_dir(settings)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Two processes (a demo and a test session) may ask at once: one builds, the other waits for it.
    with (target.parent / f"{target.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / "config.json").is_file():
            return target
        staging = target.with_name(f"{target.name}.partial")
        shutil.rmtree(staging, ignore_errors=True)
        logger.info("building the demo model in %s (once, about %.0f s)", target, DEMO_TRAIN_SECONDS + 15)
        build_tiny_model_dir(settings.vllm_venv, staging, train_seconds=DEMO_TRAIN_SECONDS, seed=DEMO_SEED)
        staging.rename(target)
    return target
