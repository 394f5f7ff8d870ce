"""The continual-pretraining config (``soro train cpt CONFIG``); see configs/train/cpt-*.yaml."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from training.common.options import LoopOptions, ModelOptions


@dataclass(frozen=True)
class ReplayOptions:
    """Original-language text mixed back in so the model keeps what it knew (English, as the seed reports)."""

    paths: list[Path]
    # Share of all training tokens that come from these files: 0.1 means 1 replay token per 9 Tajik tokens.
    ratio: float = 0.1

    def __post_init__(self) -> None:
        if not 0.0 <= self.ratio < 1.0:
            raise ValueError("replay.ratio must lie in [0, 1)")
        if not self.paths:
            raise ValueError("replay.paths must name at least one file or folder")


@dataclass(frozen=True)
class CptDataOptions:
    # Files or folders of .jsonl, .jsonl.gz, .json or .parquet shards (one document per record, in
    # ``text_field``) or .txt files (one document per file), e.g. the curated shards of `soro data`.
    train: list[Path]
    # Held-out documents; when empty, ``validation_fraction`` of the training documents is held out.
    validation: list[Path] = field(default_factory=list)
    validation_fraction: float = 0.01
    # Documents scored for bits per character at every evaluation (the rest only count in the loss).
    bpc_documents: int = 64
    text_field: str = "text"
    replay: ReplayOptions | None = None
    # Tokens per packed training sequence; documents are concatenated across their boundaries to fill it.
    seq_len: int = 2048
    num_proc: int = 1

    def __post_init__(self) -> None:
        if not self.train:
            raise ValueError("data.train must name at least one file or folder")
        if self.seq_len < 8:
            raise ValueError("data.seq_len must be at least 8")
        if not self.validation and not 0.0 < self.validation_fraction < 1.0:
            raise ValueError("data.validation_fraction must lie in (0, 1) when data.validation is empty")


@dataclass(frozen=True)
class CptConfig:
    output_dir: Path
    model: ModelOptions
    data: CptDataOptions
    train: LoopOptions
