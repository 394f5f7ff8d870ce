"""Bits per character: a held-out score that compares models with different tokenizers.

Loss per token depends on how many tokens a tokenizer cuts a text into; the total information the model
needs to encode the text does not. Summing the negative log-likelihood of every token of a document (each
predicted from the beginning-of-sequence token and what precedes it) and dividing by the number of
characters gives bits per character, comparable between Gemma's tokenizer and any other.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


@dataclass(frozen=True)
class BitsPerCharacter:
    total_bits: float
    characters: int
    tokens: int

    @property
    def value(self) -> float:
        return self.total_bits / self.characters if self.characters else math.nan

    @property
    def loss_per_token(self) -> float:
        """Mean negative log-likelihood in nats per predicted token, like a Trainer's loss."""
        return self.total_bits * math.log(2) / self.tokens if self.tokens else math.nan


def bpc_windows(ids: Sequence[int], bos: int, max_length: int) -> list[list[int]]:
    """A text's tokens cut into windows of at most ``max_length``, each starting afresh from BOS.

    Every scorer of bits per character (in-process and through a served model's prompt log-probabilities)
    uses these windows, so the same text gets the same score whoever computes it.
    """
    step = max_length - 1
    return [[bos, *ids[start : start + step]] for start in range(0, len(ids), step)]


def bits_per_character(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    *,
    max_length: int,
    batch_size: int = 4,
) -> BitsPerCharacter:
    """Score ``texts`` one document at a time; documents longer than ``max_length`` tokens go in windows.

    Each window after the first starts afresh from the BOS token, so the score is a slight upper bound for
    documents longer than one window, in exchange for a cost linear in their length.
    """
    import torch

    if max_length < 2:
        raise ValueError("max_length must be at least 2")
    bos = tokenizer.bos_token_id
    windows: list[list[int]] = []
    characters = 0
    for text in texts:
        if not text:
            continue
        characters += len(text)
        windows.extend(bpc_windows(tokenizer(text, add_special_tokens=False)["input_ids"], bos, max_length))

    was_training = model.training
    model.train(False)
    device = next(model.parameters()).device
    total_nats = 0.0
    predicted = 0
    try:
        with torch.no_grad():
            for start in range(0, len(windows), batch_size):
                batch = windows[start : start + batch_size]
                width = max(len(window) for window in batch)
                input_ids = torch.full((len(batch), width), tokenizer.pad_token_id or 0, dtype=torch.long)
                mask = torch.zeros((len(batch), width), dtype=torch.long)
                for row, window in enumerate(batch):
                    input_ids[row, : len(window)] = torch.tensor(window)
                    mask[row, : len(window)] = 1
                input_ids, mask = input_ids.to(device), mask.to(device)
                logits = model(input_ids=input_ids, attention_mask=mask).logits.float()
                log_probs = torch.log_softmax(logits[:, :-1], dim=-1)
                targets = input_ids[:, 1:]
                target_mask = mask[:, 1:].bool()
                token_nll = -log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
                total_nats += float(token_nll[target_mask].sum())
                predicted += int(target_mask.sum())
    finally:
        model.train(was_training)
    return BitsPerCharacter(total_bits=total_nats / math.log(2), characters=characters, tokens=predicted)
