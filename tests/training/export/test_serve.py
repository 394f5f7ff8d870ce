"""An exported folder is what a real vLLM (CPU build) serves, with the chat template doing the prompting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest

pytestmark = [pytest.mark.train, pytest.mark.slow]

CHAT: list[dict[str, str]] = [
    {"role": "system", "content": "Ту Соро ҳастӣ, ёрдамчии меҳрубон."},
    {"role": "user", "content": "Салом! Пойтахти Тоҷикистон кадом шаҳр аст?"},
]


async def test_vllm_serves_the_exported_model_through_its_chat_template(lora_run: Path, tmp_path: Path) -> None:
    from openai import AsyncOpenAI
    from transformers import AutoTokenizer

    from soro.settings import Settings
    from soro.vllm_runtime import VllmOptions, VllmServer
    from training.export.export import export_model
    from training.sft.data import render_chat

    folder = export_model(lora_run, tmp_path / "soro-export").folder  # bf16, as for a GPU deployment
    tokenizer = AutoTokenizer.from_pretrained(folder)
    expected = tokenizer(render_chat(tokenizer, CHAT, add_generation_prompt=True), add_special_tokens=False)[
        "input_ids"
    ]
    options = VllmOptions(
        model_dir=folder, served_model_name="soro-export", venv=Settings().vllm_venv, log_path=tmp_path / "vllm.log"
    )
    # One vLLM at a time on a small machine: this one lives only for this test.
    async with VllmServer(options) as server:
        async with aiohttp.ClientSession() as http:
            body = {"model": server.model, "messages": CHAT, "add_generation_prompt": True}
            async with http.post(f"{server.root_url}/tokenize", json=body) as response:
                assert response.status == 200, await response.text()
                tokenized = await response.json()
        assert tokenized["tokens"] == expected  # vLLM renders the prompt exactly as Gemma 3's template does

        client = AsyncOpenAI(base_url=server.base_url, api_key="EMPTY")
        messages: list[Any] = CHAT  # the SDK's message TypedDicts accept these plain dicts at run time
        completion = await client.chat.completions.create(
            model=server.model, messages=messages, max_tokens=6, temperature=0.0
        )
        await client.close()
    assert completion.usage is not None and completion.usage.prompt_tokens == len(expected)
    assert completion.choices[0].finish_reason in {"stop", "length"}
    assert completion.choices[0].message.content is not None
