"""A model folder scored in-process with transformers: log-likelihoods, greedy generation, bits per character.

Log-likelihoods follow lm-evaluation-harness's causal-LM recipe (trailing spaces of the context move to the
continuation; the pair is encoded whole and split where the context's encoding ends), so a task scored here
and the same task run through ``lm_eval --model hf`` agree item by item.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from training.common.bpc import BitsPerCharacter, bits_per_character
from training.eval import progress
from training.eval.backends.base import Generation, Messages
from training.eval.window import (
    fit_pair,
    generation_budget,
    move_trailing_spaces,
    scored_length,
    warn_too_long,
)

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

LocalPrecision = Literal["auto", "bf16-true", "32-true"]


class LocalModel:
    kind = "local"
    supports_loglikelihood = True
    measures_latency = False

    def __init__(
        self, path: Path, *, precision: LocalPrecision = "auto", batch_size: int = 8, max_length: int = 2048
    ) -> None:
        import torch

        from training.common.models import load_causal_lm, load_tokenizer

        self.path = path
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        # bf16 halves memory on a GPU; CPUs without fast bf16 kernels run fp32 faster and exactly.
        self.precision: Literal["bf16-true", "32-true"] = (
            ("bf16-true" if self.device.type == "cuda" else "32-true") if precision == "auto" else precision
        )
        self.model: PreTrainedModel = load_causal_lm(str(path), precision=self.precision)
        self.model.to(self.device)  # type: ignore[arg-type]  # transformers types .to() as if it took a model
        self.model.eval()  # type: ignore[no-untyped-call]
        self.tokenizer: PreTrainedTokenizerBase = load_tokenizer(str(path))
        self.batch_size = batch_size
        model_max = getattr(self.model.config.get_text_config(), "max_position_embeddings", max_length)
        # The model's own context window, as vLLM serves it (max_model_len defaults to the same number).
        self.window = min(max_length, int(model_max))
        # One forward pass at a time: the thread pool must not run two on the same model.
        self._lock = asyncio.Lock()

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "path": str(self.path),
            "precision": self.precision,
            "device": self.device.type,
            "context_window": self.window,
        }

    async def aclose(self) -> None:
        return None

    # Log-likelihoods

    async def loglikelihoods(self, requests: Sequence[tuple[str, str]]) -> list[float]:
        async with self._lock:
            return await asyncio.to_thread(self._loglikelihoods, requests)

    def _encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        context, continuation = move_trailing_spaces(context, continuation)
        whole: list[int] = self.tokenizer.encode(context + continuation)
        context_ids: list[int] = self.tokenizer.encode(context)
        return context_ids, whole[len(context_ids) :]

    def _loglikelihoods(self, requests: Sequence[tuple[str, str]]) -> list[float]:
        import torch

        pairs = [self._encode_pair(context, continuation) for context, continuation in requests]
        progress.expect(len(pairs))
        scores: list[float] = []
        with torch.inference_mode():
            for start in range(0, len(pairs), self.batch_size):
                batch = pairs[start : start + self.batch_size]
                # The window rule every backend shares; the last token is only predicted, never fed.
                fitted = [fit_pair(context, continuation, self.window) for context, continuation in batch]
                rows = [whole[:-1] for whole, _ in fitted]
                width = max(len(row) for row in rows)
                input_ids = torch.full((len(rows), width), self._pad_id, dtype=torch.long)
                mask = torch.zeros((len(rows), width), dtype=torch.long)
                for i, row in enumerate(rows):
                    input_ids[i, : len(row)] = torch.tensor(row)
                    mask[i, : len(row)] = 1
                logits = self.model(input_ids=input_ids.to(self.device), attention_mask=mask.to(self.device)).logits
                log_probs = torch.log_softmax(logits.float(), dim=-1).cpu()
                for i, ((whole, scored), row) in enumerate(zip(fitted, rows, strict=True)):
                    positions = torch.arange(len(row) - scored, len(row))
                    targets = torch.tensor(whole[len(whole) - scored :])
                    scores.append(float(log_probs[i, positions, targets].sum()))
                progress.advance(len(batch))
        return scores

    @property
    def _pad_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return int(pad) if pad is not None else 0

    # Generation

    async def generate(
        self, conversations: Sequence[Messages], *, max_tokens: int, concurrency: int | None = None
    ) -> list[Generation]:
        async with self._lock:
            return await asyncio.to_thread(self._generate, conversations, max_tokens, concurrency or self.batch_size)

    def _render(self, messages: Messages) -> str:
        if self.tokenizer.chat_template is None:
            # A base model without a chat template reads the turns as plain text.
            return "\n\n".join(message["content"] for message in messages) + "\n"
        rendered = self.tokenizer.apply_chat_template(
            [dict(message) for message in messages], add_generation_prompt=True, tokenize=False
        )
        return str(rendered)

    def _generate(self, conversations: Sequence[Messages], max_tokens: int, batch_size: int) -> list[Generation]:
        import torch
        from transformers import GenerationConfig

        config = GenerationConfig(  # type: ignore[no-untyped-call]
            max_new_tokens=max_tokens,
            do_sample=False,
            eos_token_id=self.model.generation_config.eos_token_id,
            pad_token_id=self._pad_id,
        )
        prompts = [self._render(messages) for messages in conversations]
        progress.expect(len(prompts))
        out: list[Generation] = []
        for start in range(0, len(prompts), batch_size):
            batch = prompts[start : start + batch_size]
            # Prompts are padded on the left so every row's new tokens start at the same column.
            encoded = [self.tokenizer.encode(prompt, add_special_tokens=False) for prompt in batch]
            budgets = [generation_budget(len(row), max_tokens, self.window) for row in encoded]
            warn_too_long(budgets.count(0), self.window, str(self.path))
            # A prompt that leaves no room is not run, as a server would refuse it; a placeholder keeps the batch.
            ids = [row if budget else row[-1:] for row, budget in zip(encoded, budgets, strict=True)]
            width = max(len(row) for row in ids)
            input_ids = torch.full((len(ids), width), self._pad_id, dtype=torch.long)
            mask = torch.zeros((len(ids), width), dtype=torch.long)
            for i, row in enumerate(ids):
                input_ids[i, width - len(row) :] = torch.tensor(row)
                mask[i, width - len(row) :] = 1
            with torch.inference_mode():
                generated = self.model.generate(  # type: ignore[operator]  # typed as a tensor attribute
                    input_ids=input_ids.to(self.device),
                    attention_mask=mask.to(self.device),
                    generation_config=config,
                )
            for row, budget in zip(generated[:, width:], budgets, strict=True):
                tokens = _until_end(row, self._end_ids)[:budget]
                out.append(
                    Generation(
                        text=str(self.tokenizer.decode(tokens, skip_special_tokens=True)).strip(),
                        seconds=None,
                        first_token_seconds=None,
                        completion_tokens=len(tokens),
                    )
                )
            progress.advance(len(batch))
        return out

    @property
    def _end_ids(self) -> frozenset[int]:
        eos = self.model.generation_config.eos_token_id
        ids = eos if isinstance(eos, list) else [eos]
        return frozenset(int(i) for i in ids if i is not None) | {self._pad_id}

    # Bits per character

    async def text_bits(self, texts: Sequence[str]) -> list[BitsPerCharacter]:
        async with self._lock:
            return await asyncio.to_thread(self._text_bits, texts)

    def _text_bits(self, texts: Sequence[str]) -> list[BitsPerCharacter]:
        progress.expect(len(texts))
        scores = []
        for text in texts:
            scores.append(
                bits_per_character(
                    self.model,
                    self.tokenizer,
                    [text],
                    max_length=scored_length(self.window),
                    batch_size=self.batch_size,
                )
            )
            progress.advance()
        return scores


def _until_end(row: torch.Tensor, end_ids: frozenset[int]) -> list[int]:
    tokens: list[int] = []
    for token in row.tolist():
        if token in end_ids:
            break
        tokens.append(int(token))
    return tokens
