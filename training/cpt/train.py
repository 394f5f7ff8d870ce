"""Continual pretraining of a Gemma 3 checkpoint on curated Tajik shards (``soro train cpt CONFIG``).

The Hugging Face Trainer runs the loop: mixed precision, gradient checkpointing, the warm-up + cosine
schedule, checkpoints, TensorBoard, and the exact resume that a crashed run needs (model, optimizer,
scheduler, RNG states, and the position in the seeded data order). On top of it this module adds the packed
data with its replay mix, bits per character on held-out documents at every evaluation, and a CSV log.
Under ``accelerate launch`` the same code runs with DDP, FSDP or DeepSpeed (configs/train/accelerate/).
"""

from __future__ import annotations

import json
import logging
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from transformers import Trainer, TrainerCallback, TrainingArguments, default_data_collator

from training.common.bpc import bits_per_character
from training.common.distributed import keep_fsdp_on_cpu, save_final
from training.common.logs import CsvLogCallback
from training.common.models import load_causal_lm, load_tokenizer
from training.common.options import training_arguments
from training.common.resume import load_completed, plan_resume, say_already_done
from training.common.run_summary import RunSummary, read_summary
from training.config import config_to_dict
from training.cpt.config import CptConfig
from training.cpt.data import build_cpt_data

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

log = logging.getLogger(__name__)

FINAL_DIR = "final"


class CptTrainer(Trainer):
    """A Trainer whose evaluation also reports bits per character of the held-out documents."""

    def __init__(self, *args: Any, bpc_texts: Sequence[str], bpc_max_length: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.bpc_texts = list(bpc_texts)
        self.bpc_max_length = bpc_max_length

    def evaluate(
        self,
        eval_dataset: Any = None,
        ignore_keys: list[str] | None = None,
        metric_key_prefix: str = "eval",
    ) -> dict[str, float]:
        metrics: dict[str, float] = super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)
        if self.bpc_texts:
            # Every process scores the same documents, so sharded models (FSDP, ZeRO-3) stay in step.
            score = bits_per_character(
                typing.cast("PreTrainedModel", self.model),
                typing.cast("PreTrainedTokenizerBase", self.processing_class),
                self.bpc_texts,
                max_length=self.bpc_max_length,
                batch_size=self.args.per_device_eval_batch_size,
            )
            extra = {f"{metric_key_prefix}_bits_per_character": score.value}
            self.log(extra)
            metrics.update(extra)
        return metrics


def run_cpt(config: CptConfig, *, callbacks: Sequence[TrainerCallback] = ()) -> Path:
    """Train as ``config`` says and return the folder of the final model (``output_dir/final``)."""
    output_dir = config.output_dir
    final_dir = output_dir / FINAL_DIR
    plan = plan_resume(output_dir, config.train, config, final_dir)
    if plan.done:
        say_already_done(final_dir, plan)
        return final_dir
    output_dir.mkdir(parents=True, exist_ok=True)
    args = training_arguments(TrainingArguments, output_dir, config.model, config.train)
    keep_fsdp_on_cpu()
    tokenizer = load_tokenizer(config.model.name_or_path)
    # Rank 0 tokenises and fills the datasets cache; the other ranks then read it instead of redoing the work.
    with args.main_process_first(desc="tokenise and pack"):
        data = build_cpt_data(config.data, tokenizer, seed=config.train.seed)
    log.info("data: %s", json.dumps(data.report.as_dict()))
    if args.process_index == 0:
        (output_dir / "data_report.json").write_text(json.dumps(data.report.as_dict(), indent=2) + "\n")

    model = load_causal_lm(
        config.model.name_or_path,
        precision=config.model.precision,
        attn_implementation=config.model.attn_implementation,
    )
    trainer = CptTrainer(
        model=model,
        args=args,
        train_dataset=data.train,
        eval_dataset=data.validation,
        processing_class=tokenizer,
        data_collator=default_data_collator,
        callbacks=[CsvLogCallback(output_dir / "metrics.csv"), *callbacks],
        bpc_texts=data.validation_texts,
        bpc_max_length=config.data.seq_len,
    )
    if plan.completed:
        load_completed(trainer, plan)
    else:
        trainer.train(resume_from_checkpoint=plan.checkpoint)
    metrics = trainer.evaluate()

    save_final(trainer, final_dir)
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(str(final_dir))
        RunSummary(
            kind="cpt",
            base_model=config.model.name_or_path,
            data={
                "train_files": [str(path) for path in config.data.train],
                "replay_files": [str(path) for path in config.data.replay.paths] if config.data.replay else [],
                **data.report.as_dict(),
            },
            steps=trainer.state.global_step,
            metrics={key: float(value) for key, value in metrics.items()},
            config=config_to_dict(config),
            parent=read_summary(Path(config.model.name_or_path)),
        ).write(final_dir)
    return final_dir
