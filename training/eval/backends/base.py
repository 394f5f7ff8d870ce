"""The interface every backend offers the tasks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from training.common.bpc import BitsPerCharacter

Messages = Sequence[Mapping[str, str]]  # OpenAI chat messages: {"role": ..., "content": ...}


class UnsupportedByBackend(RuntimeError):
    """The backend cannot compute what a task asks for (e.g. log-likelihoods from a chat-only endpoint)."""


@dataclass(frozen=True)
class Generation:
    text: str
    # From sending the request to the last token, and to the first one: measured per request only by a served,
    # streamed backend. A local model generates a batch at once, so it gives neither (None).
    seconds: float | None
    first_token_seconds: float | None
    completion_tokens: int


class Backend(Protocol):
    @property
    def kind(self) -> str:
        """``local`` or ``endpoint``."""

    @property
    def supports_loglikelihood(self) -> bool: ...

    @property
    def measures_latency(self) -> bool:
        """Whether each generation's times are its own (streamed, one request each), not a batch's."""

    def describe(self) -> dict[str, Any]:
        """What was measured (model folder or endpoint, served model name, precision), for ``run.json``."""

    async def loglikelihoods(self, requests: Sequence[tuple[str, str]]) -> list[float]:
        """log P(continuation | context) in nats for each ``(context, continuation)``."""

    async def generate(
        self, conversations: Sequence[Messages], *, max_tokens: int, concurrency: int | None = None
    ) -> list[Generation]:
        """Greedy replies to each conversation; ``concurrency`` bounds how many are produced at once."""

    async def text_bits(self, texts: Sequence[str]) -> list[BitsPerCharacter]:
        """Bits the model needs to encode each text, each token predicted from BOS and what precedes it."""

    async def aclose(self) -> None: ...
