"""A real vLLM (CPU) for the test session, serving a tiny randomly initialised Gemma 3.

Fixtures (session scope; the server starts on first use, once per test session, and stops at its end):

- ``tiny_model_dir``: the model folder, built in vLLM's own venv (about 5 s).
- ``vllm_server``: a ``ServedModel`` with ``base_url`` (ends in ``/v1``), ``model`` (the served name),
  ``model_dir``, ``port`` and ``server`` (the ``VllmServer``; e.g. ``server.rss_bytes()``).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from soro.settings import Settings
from soro.vllm_runtime import VllmError, VllmOptions, VllmServer, build_tiny_model_dir, vllm_python

TEST_MODEL_NAME = "soro-tiny"


@dataclass(frozen=True)
class ServedModel:
    base_url: str
    model: str
    model_dir: Path
    port: int
    server: VllmServer


def _vllm_venv() -> Path:
    venv = Settings().vllm_venv
    try:
        vllm_python(venv)
    except VllmError as exc:
        pytest.fail(str(exc), pytrace=False)
    return venv


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Gemma 3 folder (random weights, tokenizer trained on the project's Tajik sample)."""
    return build_tiny_model_dir(_vllm_venv(), tmp_path_factory.mktemp("models") / "tiny-gemma3")


@pytest.fixture(scope="session")
async def vllm_server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ServedModel]:
    """One vLLM for the whole session, already proven to answer a chat completion."""
    options = VllmOptions(
        model_dir=tiny_model_dir,
        served_model_name=TEST_MODEL_NAME,
        venv=_vllm_venv(),
        log_path=tmp_path_factory.mktemp("vllm") / "vllm.log",
    )
    if port := os.environ.get("SORO_TEST_VLLM_PORT"):
        # Local iteration: reuse a vLLM already serving the same tiny model (built with the same seed).
        server = VllmServer(dataclasses.replace(options, port=int(port)))
        yield ServedModel(server.base_url, server.model, tiny_model_dir, int(port), server)
        return
    async with VllmServer(options) as server:
        yield ServedModel(
            base_url=server.base_url,
            model=server.model,
            model_dir=tiny_model_dir,
            port=options.port,
            server=server,
        )
