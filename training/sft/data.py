"""Instruction data: read JSONL, validate with counted reasons, split, tokenise with assistant-only labels.

Two record shapes are accepted, one per line:

    {"instruction": "…", "input": "…", "output": "…"}          (input may be empty or absent)
    {"messages": [{"role": "system"|"user"|"assistant", "content": "…"}, …]}

Every example is turned into chat messages, rendered with the tokenizer's own (Gemma 3) chat template, and
tokenised once. Which tokens the model must learn to produce is found from the template itself: the
characters between the rendering of the conversation up to an assistant turn (with the generation prompt)
and the rendering that includes that turn. Those are the assistant's words and its ``<end_of_turn>``; every
other token (system prompt, user turns, turn headers) gets no loss.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from training.common.language import reply_language
from training.sft.config import SftDataOptions

if TYPE_CHECKING:
    from datasets import Dataset
    from transformers import PreTrainedTokenizerBase

log = logging.getLogger(__name__)

Message = dict[str, str]
ROLES = ("system", "user", "assistant")


@dataclass
class ValidationReport:
    """What happened to every record read: kept, or dropped for the first reason that applied."""

    read: int = 0
    kept: int = 0
    malformed: int = 0
    empty: int = 0
    duplicate: int = 0
    not_tajik: int = 0
    too_long: int = 0
    train: int = 0
    validation: int = 0
    # A few dropped records per reason, "file:line", to find them again.
    examples: dict[str, list[str]] = field(default_factory=dict)

    def drop(self, reason: str, where: str) -> None:
        setattr(self, reason, getattr(self, reason) + 1)
        samples = self.examples.setdefault(reason, [])
        if len(samples) < 5:
            samples.append(where)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Example:
    messages: list[Message]
    where: str


@dataclass(frozen=True)
class SftData:
    train: Dataset
    validation: Dataset
    report: ValidationReport
    system_prompt: str


def to_messages(record: object) -> list[Message]:
    """Chat messages of one record; ValueError when it has neither accepted shape."""
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    if "messages" in record:
        messages = record["messages"]
        if not isinstance(messages, list) or not messages:
            raise ValueError("messages must be a non-empty list")
        result = []
        for message in messages:
            if not isinstance(message, dict) or message.get("role") not in ROLES:
                raise ValueError(f"each message needs a role among {ROLES}")
            content = message.get("content")
            if not isinstance(content, str):
                raise ValueError("message content must be a string")
            result.append({"role": message["role"], "content": content})
        return result
    if "instruction" in record and "output" in record:
        instruction, extra, output = record["instruction"], record.get("input") or "", record["output"]
        if not all(isinstance(value, str) for value in (instruction, extra, output)):
            raise ValueError("instruction, input and output must be strings")
        prompt = f"{instruction.strip()}\n\n{extra.strip()}" if extra.strip() else instruction.strip()
        return [{"role": "user", "content": prompt}, {"role": "assistant", "content": output}]
    raise ValueError('a record needs "messages" or "instruction" and "output"')


def read_examples(paths: Sequence[Path], report: ValidationReport) -> list[Example]:
    examples = []
    for path in paths:
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                report.read += 1
                where = f"{path.name}:{number}"
                try:
                    examples.append(Example(to_messages(json.loads(line)), where))
                except (json.JSONDecodeError, ValueError) as exc:
                    log.debug("%s: %s", where, exc)
                    report.drop("malformed", where)
    return examples


def with_system_prompt(messages: list[Message], system_prompt: str) -> list[Message]:
    if not system_prompt or messages[0]["role"] == "system":
        return messages
    return [{"role": "system", "content": system_prompt}, *messages]


def _is_empty(messages: list[Message]) -> bool:
    turns = [m for m in messages if m["role"] != "system"]
    return (
        not any(m["role"] == "assistant" for m in turns)
        or not any(m["role"] == "user" for m in turns)
        or any(not m["content"].strip() for m in turns)
    )


def dedup_key(messages: list[Message]) -> str:
    """Examples that differ only in case, spacing or system prompt are one example."""
    return "\x1e".join(" ".join(m["content"].casefold().split()) for m in messages if m["role"] != "system")


def _conversation_text(messages: list[Message]) -> str:
    return "\n".join(m["content"] for m in messages if m["role"] != "system")


def render_chat(
    tokenizer: PreTrainedTokenizerBase, messages: list[Message], *, add_generation_prompt: bool = False
) -> str:
    """The conversation as text, by the tokenizer's chat template."""
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)
    assert isinstance(text, str)
    return text


def assistant_spans(tokenizer: PreTrainedTokenizerBase, messages: list[Message]) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character spans of what the assistant says (its end-of-turn included)."""
    text = render_chat(tokenizer, messages)
    spans = []
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = render_chat(tokenizer, messages[:index], add_generation_prompt=True)
        through = render_chat(tokenizer, messages[: index + 1])
        if not (text.startswith(through) and through.startswith(before)):
            raise ValueError("the chat template does not render a conversation as the sum of its turns")
        spans.append((len(before), len(through)))
    return text, spans


def tokenize_example(tokenizer: PreTrainedTokenizerBase, messages: list[Message]) -> dict[str, list[int]]:
    """``input_ids`` of the rendered conversation and ``assistant_masks``: 1 on tokens the model must produce."""
    text, spans = assistant_spans(tokenizer, messages)
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    mask = [
        int(any(start <= token_start < end for start, end in spans)) for token_start, _ in encoded["offset_mapping"]
    ]
    return {"input_ids": list(encoded["input_ids"]), "assistant_masks": mask}


def validate(
    examples: Iterable[Example],
    tokenizer: PreTrainedTokenizerBase,
    options: SftDataOptions,
    system_prompt: str,
    report: ValidationReport,
    seen: set[str],
) -> list[dict[str, list[int]]]:
    """The tokenised examples that pass every check; the others are counted in ``report`` by reason."""
    kept = []
    for example in examples:
        messages = example.messages
        if _is_empty(messages):
            report.drop("empty", example.where)
            continue
        key = dedup_key(messages)
        if key in seen:
            report.drop("duplicate", example.where)
            continue
        seen.add(key)
        if options.require_tajik and not reply_language(_conversation_text(messages)).is_tajik:
            report.drop("not_tajik", example.where)
            continue
        try:
            tokenized = tokenize_example(tokenizer, with_system_prompt(messages, system_prompt))
        except ValueError as exc:  # the template rejected the conversation (e.g. roles out of turn)
            log.debug("%s: %s", example.where, exc)
            report.drop("malformed", example.where)
            continue
        if len(tokenized["input_ids"]) > options.max_length:
            report.drop("too_long", example.where)
            continue
        report.kept += 1
        kept.append(tokenized)
    return kept


def build_sft_data(
    options: SftDataOptions, tokenizer: PreTrainedTokenizerBase, *, system_prompt: str, seed: int
) -> SftData:
    """Validated, tokenised train and validation sets; identical for the same files, options and seed."""
    from datasets import Dataset

    report = ValidationReport()
    seen: set[str] = set()
    train_rows = validate(read_examples(options.train, report), tokenizer, options, system_prompt, report, seen)
    if options.validation:
        # Checked after the training set, so an example present in both counts as a duplicate and is left out.
        validation_rows = validate(
            read_examples(options.validation, report), tokenizer, options, system_prompt, report, seen
        )
    else:
        if len(train_rows) < 2:
            raise ValueError(f"only {len(train_rows)} valid example(s): too few to hold any out for validation")
        random.Random(seed).shuffle(train_rows)
        held_out = max(1, round(len(train_rows) * options.validation_fraction))
        validation_rows, train_rows = train_rows[:held_out], train_rows[held_out:]
    if not train_rows or not validation_rows:
        raise ValueError(f"no valid examples left to train or validate on: {json.dumps(report.as_dict())}")
    report.train, report.validation = len(train_rows), len(validation_rows)
    return SftData(
        train=Dataset.from_list(train_rows),
        validation=Dataset.from_list(validation_rows),
        report=report,
        system_prompt=system_prompt,
    )
