"""An OpenAI-compatible endpoint (the production vLLM, a quantised model served by vLLM, any compatible server).

Replies are streamed, as the inference worker does, so each request's time to first token and total time are
measured the way users feel them. Bits per character use the completions API with ``echo`` and ``logprobs``
(vLLM returns the prompt's token log-probabilities); chat-only servers cannot give them and say so.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import openai
from openai import AsyncOpenAI

from training.common.bpc import BitsPerCharacter
from training.eval import progress
from training.eval.backends.base import Generation, Messages, UnsupportedByBackend

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletionMessageParam


class Endpoint:
    kind = "endpoint"
    supports_loglikelihood = False
    measures_latency = True

    def __init__(
        self,
        base_url: str,
        *,
        model: str | None = None,
        api_key: str = "EMPTY",
        concurrency: int = 8,
        timeout_seconds: float = 300.0,
    ) -> None:
        self.base_url = base_url
        self.model = model
        self.concurrency = concurrency
        self.client = AsyncOpenAI(base_url=base_url, api_key=api_key, timeout=timeout_seconds, max_retries=2)

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "base_url": self.base_url, "model": self.model}

    async def aclose(self) -> None:
        await self.client.close()

    async def served_model(self) -> str:
        """The model name to ask for: the configured one, else the first the server lists."""
        if self.model is None:
            models = await self.client.models.list()
            if not models.data:
                raise UnsupportedByBackend(f"{self.base_url} serves no model")
            self.model = models.data[0].id
        return self.model

    async def loglikelihoods(self, requests: Sequence[tuple[str, str]]) -> list[float]:
        raise UnsupportedByBackend("an OpenAI-compatible endpoint is scored by generation, not log-likelihoods")

    async def generate(
        self, conversations: Sequence[Messages], *, max_tokens: int, concurrency: int | None = None
    ) -> list[Generation]:
        model = await self.served_model()
        slots = asyncio.Semaphore(concurrency or self.concurrency)

        async def one(messages: Messages) -> Generation:
            async with slots:
                generation = await self._stream(model, messages, max_tokens)
            progress.advance()
            return generation

        progress.expect(len(conversations))
        return list(await asyncio.gather(*(one(messages) for messages in conversations)))

    async def _stream(self, model: str, messages: Messages, max_tokens: int) -> Generation:
        started = time.perf_counter()
        first_token_at: float | None = None
        parts: list[str] = []
        completion_tokens = 0
        stream = await self.client.chat.completions.create(
            model=model,
            messages=cast("list[ChatCompletionMessageParam]", [dict(message) for message in messages]),
            max_tokens=max_tokens,
            temperature=0.0,
            stream=True,
            stream_options={"include_usage": True},
        )
        async for chunk in stream:
            if chunk.usage is not None:
                completion_tokens = chunk.usage.completion_tokens
            for choice in chunk.choices:
                if choice.delta.content:
                    if first_token_at is None:
                        first_token_at = time.perf_counter()
                    parts.append(choice.delta.content)
        finished = time.perf_counter()
        return Generation(
            text="".join(parts).strip(),
            seconds=finished - started,
            first_token_seconds=None if first_token_at is None else first_token_at - started,
            completion_tokens=completion_tokens,
        )

    async def text_bits(self, texts: Sequence[str]) -> list[BitsPerCharacter]:
        model = await self.served_model()
        slots = asyncio.Semaphore(self.concurrency)

        async def one(text: str) -> BitsPerCharacter:
            async with slots:
                bits = await self._text_bits(model, text)
            progress.advance()
            return bits

        progress.expect(len(texts))
        return list(await asyncio.gather(*(one(text) for text in texts)))

    async def _text_bits(self, model: str, text: str) -> BitsPerCharacter:
        try:
            response = await self.client.completions.create(
                model=model, prompt=text, max_tokens=1, temperature=0.0, echo=True, logprobs=0
            )
        except (openai.NotFoundError, openai.BadRequestError) as exc:
            raise UnsupportedByBackend(f"{self.base_url} gives no prompt log-probabilities: {exc}") from exc
        choice = response.choices[0]
        if choice.logprobs is None or choice.logprobs.token_logprobs is None or response.usage is None:
            raise UnsupportedByBackend(f"{self.base_url} returned no prompt log-probabilities")
        # The echoed prompt comes first, then the one generated token; the prompt's first token (BOS) has no
        # log-probability because nothing precedes it.
        prompt_logprobs = choice.logprobs.token_logprobs[: response.usage.prompt_tokens]
        nats = -sum(value for value in prompt_logprobs if value is not None)
        predicted = sum(value is not None for value in prompt_logprobs)
        return BitsPerCharacter(total_bits=nats / math.log(2), characters=len(text), tokens=predicted)
