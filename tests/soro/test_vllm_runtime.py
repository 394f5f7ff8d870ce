"""The real vLLM (CPU) that tests and the demo run: it serves the tiny Gemma 3 through the OpenAI API."""

from __future__ import annotations

import time
from pathlib import Path

import aiohttp
import pytest
from openai import AsyncOpenAI

from soro.ports import free_port
from soro.settings import Settings
from soro.vllm_runtime import (
    VllmError,
    VllmOptions,
    VllmServer,
    demo_model_dir,
    ensure_demo_model,
)
from tests.support.vllm import ServedModel

pytestmark = pytest.mark.slow


async def test_streams_a_chat_completion_with_usage(vllm_server: ServedModel) -> None:
    client = AsyncOpenAI(base_url=vllm_server.base_url, api_key="EMPTY")
    started = time.perf_counter()
    first_token_at: float | None = None
    pieces: list[str] = []
    usage = None
    stream = await client.chat.completions.create(
        model=vllm_server.model,
        messages=[{"role": "system", "content": "Ту Соро ҳастӣ."}, {"role": "user", "content": "Салом!"}],
        max_tokens=12,
        temperature=0.0,
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"ignore_eos": True},  # random weights may pick an end-of-turn id at any step
    )
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            first_token_at = first_token_at or time.perf_counter()
            pieces.append(chunk.choices[0].delta.content)
        if chunk.usage:
            usage = chunk.usage
    await client.close()
    assert first_token_at is not None and first_token_at - started < 5.0
    assert len(pieces) > 1  # streamed token by token, not one block at the end
    assert usage is not None and usage.completion_tokens == 12 and usage.prompt_tokens > 12


async def test_chat_template_is_applied(vllm_server: ServedModel) -> None:
    root = vllm_server.base_url.removesuffix("/v1")
    messages = [{"role": "system", "content": "Ту Соро ҳастӣ."}, {"role": "user", "content": "Наврӯз муборак!"}]
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{root}/tokenize",
            json={"model": vllm_server.model, "messages": messages, "add_generation_prompt": True},
        ) as response:
            assert response.status == 200
            tokens = (await response.json())["tokens"]
        async with http.post(f"{root}/detokenize", json={"model": vllm_server.model, "tokens": tokens}) as response:
            prompt = (await response.json())["prompt"]
    # Gemma 3: the system text opens the first user turn; turn markers are single special tokens.
    assert prompt == "<bos><start_of_turn>user\nТу Соро ҳастӣ.\n\nНаврӯз муборак!<end_of_turn>\n<start_of_turn>model\n"
    assert tokens[:2] == [2, 4]  # <bos>, <start_of_turn>


async def test_metrics_expose_vllm_series(vllm_server: ServedModel) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{vllm_server.base_url.removesuffix('/v1')}/metrics") as response,
    ):
        body = await response.text()
    assert response.status == 200
    for series in ("vllm:num_requests_running", "vllm:time_to_first_token_seconds", "vllm:generation_tokens"):
        assert series in body
    assert vllm_server.server.rss_bytes() > 500 * 2**20


async def test_a_server_that_cannot_start_says_why(tmp_path: Path) -> None:
    not_a_model = tmp_path / "empty"
    not_a_model.mkdir()
    (not_a_model / "config.json").write_text('{"model_type": "no_such_model"}')
    options = VllmOptions(
        model_dir=not_a_model,
        served_model_name="broken",
        venv=Settings().vllm_venv,
        log_path=tmp_path / "vllm.log",
        port=free_port(),
    )
    server = VllmServer(options)
    with pytest.raises(VllmError, match="exited with code") as failure:
        await server.start()
    assert "no_such_model" in str(failure.value)  # the log tail names the cause
    assert server.pid is None  # stopped, nothing left running


def test_demo_model_is_built_once_and_then_reused(tmp_path: Path) -> None:
    settings = Settings(cache_dir=tmp_path)
    folder = demo_model_dir(settings)
    assert folder.parent == tmp_path / "models"
    assert folder == demo_model_dir(settings)  # the name depends only on what the model is made from
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    started = time.perf_counter()
    assert ensure_demo_model(settings) == folder
    assert time.perf_counter() - started < 1.0  # found, not rebuilt
