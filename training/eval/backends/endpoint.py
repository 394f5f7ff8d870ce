"""An OpenAI-compatible endpoint (the production vLLM, a quantised model served by vLLM, any compatible server).

Replies are streamed, as the inference worker does, so each request's time to first token and total time are
measured the way users feel them. Log-likelihoods (``scoring: loglikelihood``) and bits per character use the
completions API with ``echo`` and ``logprobs`` on token ids from vLLM's ``/tokenize``, which also tells the
served ``max_model_len``: the same tokens, windows and truncation as the in-process backend
(``training.eval.window``), so both score the same items the same way. Servers without them say so.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import httpx
import openai
from openai import AsyncOpenAI

from training.common.bpc import BitsPerCharacter, bpc_windows
from training.eval import progress
from training.eval.backends.base import Generation, Messages, UnsupportedByBackend
from training.eval.window import fit_pair, generation_budget, move_trailing_spaces, scored_length, warn_too_long

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
        self._http = httpx.AsyncClient(timeout=timeout_seconds, headers={"Authorization": f"Bearer {api_key}"})
        self.window: int | None = None  # the served max_model_len, once /tokenize has told it
        self.tokenize_error = "no /tokenize (vLLM's)"

    def describe(self) -> dict[str, Any]:
        described: dict[str, Any] = {"kind": self.kind, "base_url": self.base_url, "model": self.model}
        if self.window is not None:
            described["context_window"] = self.window
        return described

    @property
    def _root(self) -> str:
        # vLLM serves /tokenize beside /v1, not under it.
        return self.base_url.rstrip("/").removesuffix("/v1")

    async def tokenize(
        self, *, prompt: str | None = None, messages: Messages | None = None, add_special_tokens: bool = True
    ) -> list[int] | None:
        """The served tokenizer's ids for a prompt or a chat (with the generation prompt); None without /tokenize."""
        model = await self.served_model()
        body: dict[str, Any] = {"model": model}
        if messages is not None:
            body.update(messages=[dict(m) for m in messages], add_generation_prompt=True)
        else:
            body.update(prompt=prompt, add_special_tokens=add_special_tokens)
        try:
            response = await self._http.post(f"{self._root}/tokenize", json=body)
        except httpx.HTTPError:
            return None
        if response.is_error:
            self.tokenize_error = f"HTTP {response.status_code} from {self._root}/tokenize: {response.text[:200]}"
            return None
        data = response.json()
        if self.window is None and data.get("max_model_len"):
            self.window = int(data["max_model_len"])
        return [int(token) for token in data["tokens"]]

    async def _required_tokens(self, prompt: str, *, add_special_tokens: bool) -> list[int]:
        tokens = await self.tokenize(prompt=prompt, add_special_tokens=add_special_tokens)
        if tokens is None or self.window is None:
            raise UnsupportedByBackend(
                f"{self.base_url}: {self.tokenize_error}, so prompt log-probabilities cannot be aligned to tokens"
            )
        return tokens

    async def aclose(self) -> None:
        await self.client.close()
        await self._http.aclose()

    async def served_model(self) -> str:
        """The model name to ask for: the configured one, else the first the server lists."""
        if self.model is None:
            models = await self.client.models.list()
            if not models.data:
                raise UnsupportedByBackend(f"{self.base_url} serves no model")
            self.model = models.data[0].id
        return self.model

    async def loglikelihoods(self, requests: Sequence[tuple[str, str]]) -> list[float]:
        model = await self.served_model()
        slots = asyncio.Semaphore(self.concurrency)

        async def one(context: str, continuation: str) -> float:
            async with slots:
                context, continuation = move_trailing_spaces(context, continuation)
                whole = await self._required_tokens(context + continuation, add_special_tokens=True)
                context_ids = await self._required_tokens(context, add_special_tokens=True)
                assert self.window is not None
                sequence, scored = fit_pair(context_ids, whole[len(context_ids) :], self.window)
                logprobs = await self._prompt_logprobs(model, sequence)
            progress.advance()
            return float(sum(value for value in logprobs[len(sequence) - scored :] if value is not None))

        progress.expect(len(requests))
        return list(await asyncio.gather(*(one(context, continuation) for context, continuation in requests)))

    async def _prompt_logprobs(self, model: str, tokens: list[int]) -> list[float | None]:
        """log P of each prompt token given those before it (None for the first), by ``echo``."""
        try:
            response = await self.client.completions.create(
                model=model, prompt=tokens, max_tokens=1, temperature=0.0, echo=True, logprobs=0
            )
        except openai.NotFoundError as exc:
            raise UnsupportedByBackend(f"{self.base_url} has no completions API for prompt log-probabilities") from exc
        except openai.BadRequestError as exc:
            raise UnsupportedByBackend(f"{self.base_url} refused a {len(tokens)}-token scoring request: {exc}") from exc
        choice = response.choices[0]
        if choice.logprobs is None or choice.logprobs.token_logprobs is None:
            raise UnsupportedByBackend(f"{self.base_url} returned no prompt log-probabilities")
        return list(choice.logprobs.token_logprobs[: len(tokens)])

    async def generate(
        self, conversations: Sequence[Messages], *, max_tokens: int, concurrency: int | None = None
    ) -> list[Generation]:
        model = await self.served_model()
        slots = asyncio.Semaphore(concurrency or self.concurrency)

        too_long = 0

        async def one(messages: Messages) -> Generation:
            nonlocal too_long
            async with slots:
                budget = max_tokens
                prompt = await self.tokenize(messages=messages)
                if prompt is not None and self.window is not None:
                    budget = generation_budget(len(prompt), max_tokens, self.window)
                if budget:
                    generation = await self._stream(model, messages, budget)
                else:  # the server would refuse it; the in-process backend skips it the same way
                    too_long += 1
                    generation = Generation(text="", seconds=0.0, first_token_seconds=None, completion_tokens=0)
            progress.advance()
            return generation

        progress.expect(len(conversations))
        generations = list(await asyncio.gather(*(one(messages) for messages in conversations)))
        if self.window is not None:
            warn_too_long(too_long, self.window, self.base_url)
        return generations

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
        ids = await self._required_tokens(text, add_special_tokens=False)
        with_bos = await self._required_tokens("", add_special_tokens=True)
        if len(with_bos) != 1:
            raise UnsupportedByBackend(f"{self.base_url}: the served tokenizer adds {with_bos} for BOS, not one token")
        bos = with_bos[0]
        assert self.window is not None
        nats = 0.0
        predicted = 0
        # The windows the in-process backend scores; each one's first token (BOS) has no log-probability.
        for window in bpc_windows(ids, bos, scored_length(self.window)):
            values = [value for value in (await self._prompt_logprobs(model, window))[1:] if value is not None]
            nats -= sum(values)
            predicted += len(values)
        return BitsPerCharacter(total_bits=nats / math.log(2), characters=len(text), tokens=predicted)
