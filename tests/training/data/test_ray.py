"""Curation on a real local Ray cluster: the same shards as the local executor, and Ray only on loopback.

The test starts its own single-node cluster (its own temp folder and ports), runs ``soro data build`` on it,
checks with ``ss -ltnp`` that every socket the cluster's processes listen on is bound to 127.0.0.1, and stops
exactly the processes it started, by pid.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from soro.ports import free_port
from tests.training.data.conftest import RawCorpus, read_shards
from training.data.build import BuildResult
from training.data.executors import RAY_LOOPBACK_ENV

pytestmark = [pytest.mark.train, pytest.mark.slow, pytest.mark.shared_data]

REPO_ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
LOOPBACK = {"127.0.0.1", "[::ffff:127.0.0.1]", "[::1]"}


def _cluster_pids(temp_dir: str) -> list[int]:
    import psutil

    pids = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        if any(temp_dir in part for part in process.info["cmdline"] or []):
            pids.append(process.info["pid"])
    return pids


def _listening(pids: list[int]) -> list[tuple[str, int]]:
    """(local address, pid) of every listening TCP socket of ``pids``, as ``ss -ltnp`` shows them."""
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    found = []
    for line in out.splitlines():
        fields = line.split()
        for pid in pids:
            if f"pid={pid}," in line:
                found.append((fields[3].rsplit(":", 1)[0], pid))
    return found


def _stop(temp_dir: str) -> None:
    import psutil

    processes = [psutil.Process(pid) for pid in _cluster_pids(temp_dir)]
    for process in processes:
        process.terminate()
    _, alive = psutil.wait_procs(processes, timeout=15)
    for process in alive:
        process.kill()
    psutil.wait_procs(alive, timeout=5)


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[tuple[str, str, dict[str, str]]]:
    if shutil.which("ss") is None:
        pytest.skip("ss (iproute2) is needed to check what Ray binds")
    # Ray's Unix sockets live under the temp folder, whose path must stay short.
    temp_dir = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    port = free_port()
    env = {**os.environ, **RAY_LOOPBACK_ENV, "PYTHONPATH": str(REPO_ROOT), "HF_HUB_OFFLINE": "1"}
    ports = {
        "--metrics-export-port": free_port(),
        "--dashboard-agent-listen-port": free_port(),
        "--dashboard-agent-grpc-port": free_port(),
        "--runtime-env-agent-port": free_port(),
    }
    command = [
        str(BIN / "ray"),
        "start",
        "--head",
        "--node-ip-address",
        "127.0.0.1",
        "--port",
        str(port),
        "--temp-dir",
        temp_dir,
        "--num-cpus",
        "2",
        "--include-dashboard",
        "false",
        "--disable-usage-stats",
        *[str(part) for option in ports.items() for part in option],
    ]
    try:
        started = subprocess.run(command, capture_output=True, text=True, env=env, timeout=180, check=False)
        assert started.returncode == 0, started.stdout + started.stderr
        assert "Local node IP: 127.0.0.1" in started.stdout + started.stderr
        yield f"127.0.0.1:{port}", temp_dir, env
    finally:
        _stop(temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)
    assert _cluster_pids(temp_dir) == []


def _assert_on_loopback(temp_dir: str) -> None:
    pids = _cluster_pids(temp_dir)
    sockets = _listening(pids)
    assert sockets, f"no listening socket found for Ray's processes {pids}"
    assert {address for address, _ in sockets} <= LOOPBACK, sockets


def _rows(folder: Path) -> list[tuple[Any, ...]]:
    return sorted((row["id"], row["text"]) for row in read_shards(folder))


def test_curation_on_a_local_ray_cluster_writes_the_local_executors_shards(
    ray_cluster: tuple[str, str, dict[str, str]],
    raw_corpus: RawCorpus,
    built_corpus: BuildResult,
    tmp_path: Path,
) -> None:
    address, temp_dir, env = ray_cluster
    _assert_on_loopback(temp_dir)

    output_dir = tmp_path / "on-ray"
    command = [
        str(BIN / "soro"),
        "data",
        "build",
        str(raw_corpus.config(output_dir)),
        "--set",
        "executor.kind=ray",
        "--set",
        f"executor.ray.address={address}",
        "--set",
        "executor.ray.mem_per_cpu_gb=0.25",
    ]
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=420, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert time.monotonic() - started < 420
    # Workers started for the tasks listen on loopback too.
    _assert_on_loopback(temp_dir)
    on_ray = _rows(output_dir)
    assert on_ray and on_ray == _rows(built_corpus.layout.shards)
