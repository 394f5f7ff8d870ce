"""Config sections that continual pretraining and SFT share, and their translation to Trainer arguments."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

if TYPE_CHECKING:
    from transformers import TrainingArguments

# litgpt's names: "bf16-mixed" keeps fp32 master weights and computes in bf16 (the safe default for training);
# "bf16-true" stores the weights in bf16 too (half the memory, for the largest model that must fit one GPU);
# "32-true" is plain fp32, for CPUs without fast bf16 and for tests.
Precision = Literal["bf16-mixed", "bf16-true", "32-true"]
AttentionKernel = Literal["sdpa", "eager", "flash_attention_2", "flash_attention_3", "flex_attention"]
TrainingArgumentsT = TypeVar("TrainingArgumentsT", bound="TrainingArguments")


@dataclass(frozen=True)
class ModelOptions:
    """Which checkpoint to start from and how to hold it in memory."""

    name_or_path: str
    precision: Precision = "bf16-mixed"
    attn_implementation: AttentionKernel = "sdpa"
    # Recompute activations in the backward pass: ~30 % slower, but long sequences fit.
    gradient_checkpointing: bool = True


@dataclass(frozen=True)
class LoopOptions:
    """The optimisation loop: schedule (linear warm-up, then cosine decay), batch, logging and checkpoints."""

    max_steps: int
    per_device_batch_size: int = 8
    gradient_accumulation_steps: int = 1
    learning_rate: float = 2e-5
    # The cosine ends at learning_rate × min_lr_ratio rather than zero, so a later stage can continue from it.
    min_lr_ratio: float = 0.1
    warmup_steps: int = 100
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    optimizer: str = "adamw_torch"
    logging_steps: int = 10
    eval_steps: int = 200
    save_steps: int = 200
    save_total_limit: int | None = 3
    seed: int = 42
    # After a crash, rerunning the same command continues from the newest checkpoint in output_dir.
    resume: bool = True
    report_to: list[str] = field(default_factory=lambda: ["tensorboard"])
    dataloader_workers: int = 0

    def __post_init__(self) -> None:
        for name in ("max_steps", "per_device_batch_size", "gradient_accumulation_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        for name in ("logging_steps", "eval_steps", "save_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ValueError("min_lr_ratio must lie in [0, 1]")
        if self.learning_rate <= 0:
            raise ValueError("learning_rate must be positive")


def training_arguments(
    cls: type[TrainingArgumentsT],
    output_dir: Path,
    model: ModelOptions,
    loop: LoopOptions,
    **extra: Any,
) -> TrainingArgumentsT:
    """Trainer (or TRL config) arguments for one run; ``extra`` adds options specific to that trainer."""
    import torch

    bf16 = model.precision == "bf16-mixed"
    return cls(
        output_dir=str(output_dir),
        max_steps=loop.max_steps,
        per_device_train_batch_size=loop.per_device_batch_size,
        per_device_eval_batch_size=loop.per_device_batch_size,
        gradient_accumulation_steps=loop.gradient_accumulation_steps,
        learning_rate=loop.learning_rate,
        lr_scheduler_type="cosine_with_min_lr",
        lr_scheduler_kwargs={"min_lr_rate": loop.min_lr_ratio},
        warmup_steps=loop.warmup_steps,
        weight_decay=loop.weight_decay,
        max_grad_norm=loop.max_grad_norm,
        optim=loop.optimizer,
        bf16=bf16,
        activation_checkpointing=model.gradient_checkpointing,
        # Reentrant checkpointing breaks with frozen embeddings (LoRA) and is deprecated by torch.
        activation_checkpointing_kwargs={"use_reentrant": False} if model.gradient_checkpointing else None,
        logging_steps=loop.logging_steps,
        eval_strategy="steps",
        eval_steps=loop.eval_steps,
        save_strategy="steps",
        save_steps=loop.save_steps,
        save_total_limit=loop.save_total_limit,
        seed=loop.seed,
        data_seed=loop.seed,
        report_to=loop.report_to,
        dataloader_num_workers=loop.dataloader_workers,
        use_cpu=not torch.cuda.is_available(),
        **extra,
    )
