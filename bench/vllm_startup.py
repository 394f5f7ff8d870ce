"""How fast the local vLLM (CPU) serves the tiny Gemma 3: ready time, time to first token, memory.

    .venv/bin/python bench/vllm_startup.py [--requests 20] [--vllm-defaults] [-- extra vLLM flags]

Start-up counts from process start to the first real completion; ``--vllm-defaults`` drops the runtime's
``--enforce-eager --distributed-executor-backend uni`` to compare with vLLM's own defaults.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from openai import AsyncOpenAI

from soro.settings import Settings
from soro.vllm_runtime import VllmOptions, VllmServer, build_tiny_model_dir


async def first_token_seconds(client: AsyncOpenAI, model: str) -> tuple[float, float, int]:
    """(time to first token, total time, completion tokens) of one streamed chat completion."""
    started = time.perf_counter()
    first = 0.0
    tokens = 0
    stream = await client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "Салом! Дар бораи Наврӯз нақл кун."}],
        max_tokens=32,
        stream=True,
        stream_options={"include_usage": True},
    )
    async for chunk in stream:
        if not first and chunk.choices and chunk.choices[0].delta.content:
            first = time.perf_counter() - started
        if chunk.usage:
            tokens = chunk.usage.completion_tokens
    return first, time.perf_counter() - started, tokens


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--train-seconds", type=float, default=0.0)
    parser.add_argument("--vllm-defaults", action="store_true", help="torch.compile and a separate worker")
    parser.add_argument("--model", type=Path, help="serve this folder instead of building a fresh one")
    parser.add_argument("--log", type=Path, help="keep vLLM's log here")
    parser.add_argument("extra", nargs="*", help="extra vLLM flags, after --")
    args = parser.parse_args()
    settings = Settings()
    with tempfile.TemporaryDirectory() as scratch:
        built = time.perf_counter()
        model_dir = args.model or build_tiny_model_dir(
            settings.vllm_venv, Path(scratch) / "tiny", train_seconds=args.train_seconds
        )
        build_seconds = time.perf_counter() - built
        options = VllmOptions(
            model_dir=model_dir,
            served_model_name="tiny",
            venv=settings.vllm_venv,
            log_path=args.log or Path(scratch) / "vllm.log",
            enforce_eager=not args.vllm_defaults,
            single_process_executor=not args.vllm_defaults,
            extra_args=tuple(args.extra),
        )
        started = time.perf_counter()
        async with VllmServer(options) as server:
            ready_seconds = time.perf_counter() - started
            client = AsyncOpenAI(base_url=server.base_url, api_key="EMPTY")
            runs = [await first_token_seconds(client, server.model) for _ in range(args.requests)]
            await client.close()
            rss_gib = server.rss_bytes() / 2**30
    ttft_ms = statistics.median(run[0] for run in runs) * 1000
    tokens_per_second = sum(run[2] for run in runs) / sum(run[1] for run in runs)
    flags = "vLLM defaults" if args.vllm_defaults else "--enforce-eager, uni executor"
    flags += "".join(f" {extra}" for extra in args.extra)
    print("| start-up flags | build s | ready s | TTFT p50 ms | tokens/s (1 stream) | RSS GiB |")
    print("|---|---|---|---|---|---|")
    print(
        f"| {flags} | {build_seconds:.1f} | {ready_seconds:.1f} | {ttft_ms:.1f} "
        f"| {tokens_per_second:.0f} | {rss_gib:.2f} |"
    )


if __name__ == "__main__":
    asyncio.run(main())
