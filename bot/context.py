"""The prompt of a turn: system prompt plus as much recent history as fits the token budget."""

from __future__ import annotations

import math
from collections.abc import Sequence

from inference.queue import ChatMessage


def estimate_tokens(text: str, chars_per_token: float) -> int:
    """Tokens a text costs, estimated from its length; the bot never loads the model's tokenizer.

    Gemma 3's tokenizer spends about 2.3 characters per token on Tajik; 4 tokens cover the turn markers.
    """
    return math.ceil(len(text) / chars_per_token) + 4


def merge_turns(history: Sequence[ChatMessage]) -> list[ChatMessage]:
    """Consecutive messages of one role become one turn (a question sent in three messages, an unanswered
    question followed by a new one): chat templates such as Gemma's need strictly alternating turns."""
    merged: list[ChatMessage] = []
    for message in history:
        if merged and merged[-1].role == message.role:
            merged[-1] = ChatMessage(message.role, f"{merged[-1].content}\n{message.content}")
        else:
            merged.append(message)
    while merged and merged[0].role != "user":
        merged.pop(0)
    return merged


def build_context(
    history: Sequence[ChatMessage], system_prompt: str, token_budget: int, chars_per_token: float
) -> list[ChatMessage]:
    """System prompt + the newest turns that fit ``token_budget``, oldest dropped first.

    ``history`` ends with the user turn being answered, which is always kept.
    """
    turns = merge_turns(history)
    budget = token_budget - estimate_tokens(system_prompt, chars_per_token)
    kept: list[ChatMessage] = []
    for turn in reversed(turns):
        cost = estimate_tokens(turn.content, chars_per_token)
        if kept and cost > budget:
            break
        kept.append(turn)
        budget -= cost
    kept.reverse()
    while len(kept) > 1 and kept[0].role != "user":
        kept.pop(0)
    return [ChatMessage("system", system_prompt), *kept]
