"""The real vLLM (CPU) that tests and the demo run: it serves the tiny Gemma 3 through the OpenAI API."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import pytest
from openai import AsyncOpenAI

from soro.settings import Settings
from soro.vllm_runtime import VllmError, VllmOptions, VllmServer, demo_model_dir, free_port
from tests.support.vllm import ServedModel

pytestmark = pytest.mark.slow


async def test_streams_a_chat_completion_with_usage(vllm_server: ServedModel) -> None:
    client = AsyncOpenAI(base_url=vllm_server.base_url, api_key="EMPTY")
    started = time.perf_counter()
    first_token_at: float | None = None
    text, usage = "", None
    stream = await client.chat.completions.create(
        model=vllm_server.model,
        messages=[{"role": "system", "content": "Ту Соро ҳастӣ."}, {"role": "user", "content": "Салом!"}],
        max_tokens=12,
        temperature=0.0,
        stream=True,
        stream_options={"include_usage": True},
    )
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            first_token_at = first_token_at or time.perf_counter()
            text += chunk.choices[0].delta.content
        if chunk.usage:
            usage = chunk.usage
    await client.close()
    assert first_token_at is not None and first_token_at - started < 5.0
    assert text
    assert usage is not None and usage.completion_tokens == 12  # random weights never pick an eos id on cue
    # The prompt went through the Gemma 3 template: <bos>, two turn markers, "user", "model", the texts.
    assert usage.prompt_tokens > 12


async def test_chat_template_is_applied(vllm_server: ServedModel) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(vllm_server.model_dir)
    messages = [{"role": "user", "content": "Наврӯз муборак!"}]
    expected = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{vllm_server.base_url.removesuffix('/v1')}/tokenize",
            json={"model": vllm_server.model, "messages": messages, "add_generation_prompt": True},
        ) as response,
    ):
        assert response.status == 200
        tokens = (await response.json())["tokens"]
    assert tokens == tokenizer(expected, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(tokens) == "<bos><start_of_turn>user\nНаврӯз муборак!<end_of_turn>\n<start_of_turn>model\n"


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
    await asyncio.sleep(0)


def test_demo_model_folder_changes_with_its_inputs(tmp_path: Path) -> None:
    settings = Settings(cache_dir=tmp_path)
    assert demo_model_dir(settings) == demo_model_dir(settings)
    assert demo_model_dir(settings).parent == tmp_path / "models"
