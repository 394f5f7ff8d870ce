"""The instruction-tuning config (``soro train sft CONFIG``); see configs/train/sft-*.yaml."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from training.common.options import LoopOptions, ModelOptions

Method = Literal["full", "lora", "qlora"]


@dataclass(frozen=True)
class LoraOptions:
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    # Every projection of attention and MLP: LoRA on all linear layers matches full fine-tuning best.
    target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )

    def __post_init__(self) -> None:
        if self.r < 1 or self.alpha < 1:
            raise ValueError("lora.r and lora.alpha must be at least 1")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError("lora.dropout must lie in [0, 1)")


@dataclass(frozen=True)
class SftDataOptions:
    # JSONL files: {"instruction", "input", "output"} records or {"messages": [{"role", "content"}, …]}.
    train: list[Path]
    # Held-out examples; when empty, ``validation_fraction`` of the valid training examples is held out.
    validation: list[Path] = field(default_factory=list)
    validation_fraction: float = 0.05
    # Longest example in tokens (chat template included); longer ones are dropped and counted, not cut.
    max_length: int = 2048
    # The system prompt put before every example that has none. Unset: the one the service sends
    # (SORO_SYSTEM_PROMPT, Settings().system_prompt), so the model learns under the prompt it will serve with.
    # An empty string trains without a system prompt.
    system_prompt: str | None = None
    # Drop examples whose user and assistant text together is not Tajik, by the short-text language decision
    # (training.common.language.reply_language: the bot's tajik.chat_language and its lexicon, printable text).
    require_tajik: bool = True
    # Pack several short examples into one sequence (best-fit decreasing, no cross-example attention).
    packing: bool = False

    def __post_init__(self) -> None:
        if not self.train:
            raise ValueError("data.train must name at least one JSONL file")
        if self.max_length < 8:
            raise ValueError("data.max_length must be at least 8")
        if not self.validation and not 0.0 < self.validation_fraction < 1.0:
            raise ValueError("data.validation_fraction must lie in (0, 1) when data.validation is empty")


@dataclass(frozen=True)
class SftConfig:
    output_dir: Path
    model: ModelOptions
    data: SftDataOptions
    train: LoopOptions
    # full: every weight trains; lora: low-rank adapters on a frozen model; qlora: adapters on a 4-bit
    # (NF4) frozen model, for the largest checkpoints on one GPU (needs CUDA and bitsandbytes).
    method: Method = "full"
    lora: LoraOptions = field(default_factory=LoraOptions)
