"""Training data of continual pretraining: tokenise, mix in replay text, pack into fixed-length sequences."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from training.common.documents import read_documents
from training.cpt.config import CptDataOptions

if TYPE_CHECKING:
    from datasets import Dataset
    from transformers import PreTrainedTokenizerBase

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CptData:
    train: Dataset
    validation: Dataset
    # Raw held-out texts scored for bits per character.
    validation_texts: list[str]
    report: CptDataReport


@dataclass(frozen=True)
class CptDataReport:
    train_documents: int
    train_tokens: int
    replay_documents: int
    replay_tokens: int
    replay_share: float
    validation_documents: int
    train_sequences: int
    validation_sequences: int
    seq_len: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def tokenize_documents(documents: Dataset, tokenizer: PreTrainedTokenizerBase, *, num_proc: int = 1) -> Dataset:
    """One row per document: its token ids between BOS and EOS, and their count (column ``length``)."""
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id

    def encode(batch: dict[str, list[str]]) -> dict[str, list[Any]]:
        ids = tokenizer(batch["text"], add_special_tokens=False)["input_ids"]
        input_ids = [[bos, *row, eos] for row in ids]
        return {"input_ids": input_ids, "length": [len(row) for row in input_ids]}

    return documents.map(
        encode,
        batched=True,
        remove_columns=documents.column_names,
        num_proc=num_proc if num_proc > 1 else None,
        desc="tokenise",
    )


def pack(tokenized: Dataset, seq_len: int, *, num_proc: int = 1) -> Dataset:
    """Concatenate documents (already shuffled) and cut the stream into ``seq_len``-token sequences.

    Documents run across sequence boundaries, so no token is wasted on padding; the BOS/EOS pair between
    them tells the model where one ends. The tail of each map batch that does not fill a sequence is dropped
    (under one sequence per thousand documents).
    """

    def chunk(batch: dict[str, list[list[int]]]) -> dict[str, list[list[int]]]:
        stream = [token for row in batch["input_ids"] for token in row]
        usable = len(stream) // seq_len * seq_len
        blocks = [stream[start : start + seq_len] for start in range(0, usable, seq_len)]
        return {"input_ids": blocks, "labels": [list(block) for block in blocks]}

    return tokenized.map(
        chunk,
        batched=True,
        batch_size=1000,
        remove_columns=tokenized.column_names,
        num_proc=num_proc if num_proc > 1 else None,
        desc="pack",
    )


def replay_selection(replay: Dataset, main_tokens: int, ratio: float, seed: int) -> Dataset:
    """Replay documents, shuffled, just enough that they make ``ratio`` of all tokens (all of them if short)."""
    if ratio == 0.0 or len(replay) == 0:
        return replay.select([])
    wanted = ratio / (1.0 - ratio) * main_tokens
    shuffled = replay.shuffle(seed=seed)
    taken = 0
    count = 0
    for length in shuffled["length"]:
        if taken >= wanted:
            break
        taken += length
        count += 1
    if taken < wanted:
        log.warning(
            "replay data has %d tokens, fewer than the %d a ratio of %.2f asks for: using all of it",
            taken,
            int(wanted),
            ratio,
        )
    return shuffled.select(range(count))


def build_cpt_data(options: CptDataOptions, tokenizer: PreTrainedTokenizerBase, *, seed: int) -> CptData:
    """Everything the training loop reads, rebuilt identically from the same config and seed."""
    from datasets import concatenate_datasets

    documents = read_documents(options.train, text_field=options.text_field)
    if options.validation:
        validation_documents = read_documents(options.validation, text_field=options.text_field)
        train_documents = documents
    else:
        if len(documents) < 2:
            raise ValueError("need at least two training documents to hold one out for validation")
        split = documents.train_test_split(test_size=options.validation_fraction, seed=seed)
        train_documents, validation_documents = split["train"], split["test"]

    train_tokens = tokenize_documents(train_documents, tokenizer, num_proc=options.num_proc)
    main_token_count = sum(train_tokens["length"])
    replay_tokens = train_tokens.select([])
    if options.replay is not None:
        replay_documents = read_documents(options.replay.paths, text_field=options.text_field)
        replay_all = tokenize_documents(replay_documents, tokenizer, num_proc=options.num_proc)
        replay_tokens = replay_selection(replay_all, main_token_count, options.replay.ratio, seed)
    replay_token_count = sum(replay_tokens["length"]) if len(replay_tokens) else 0

    # Shuffling whole documents before packing spreads the replay text evenly over the run.
    mixed = concatenate_datasets([train_tokens, replay_tokens]).shuffle(seed=seed)
    train = pack(mixed, options.seq_len, num_proc=options.num_proc)
    validation = pack(tokenize_documents(validation_documents, tokenizer, num_proc=options.num_proc), options.seq_len)
    if len(train) == 0:
        raise ValueError(f"the training documents hold fewer than data.seq_len={options.seq_len} tokens")
    if len(validation) == 0:
        raise ValueError(f"the validation documents hold fewer than data.seq_len={options.seq_len} tokens")
    total = main_token_count + replay_token_count
    report = CptDataReport(
        train_documents=len(train_documents),
        train_tokens=main_token_count,
        replay_documents=len(replay_tokens),
        replay_tokens=replay_token_count,
        replay_share=replay_token_count / total if total else 0.0,
        validation_documents=len(validation_documents),
        train_sequences=len(train),
        validation_sequences=len(validation),
        seq_len=options.seq_len,
    )
    texts = validation_documents.select(range(min(options.bpc_documents, len(validation_documents))))["text"]
    return CptData(train=train, validation=validation, validation_texts=list(texts), report=report)
