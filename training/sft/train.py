"""Teacher-style instruction tuning (``soro train sft CONFIG``) with TRL's SFTTrainer.

The examples arrive tokenised with their assistant masks (training.sft.data), so the loss covers the
assistant's tokens only whatever the template; TRL turns the masks into labels, pads or packs, and runs the
loop (with checkpoints and exact resume from the Trainer it builds on). Full fine-tuning, LoRA or QLoRA is a
config choice; LoRA runs save the adapter, which ``soro train export`` merges into the base weights.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from transformers import TrainerCallback

from training.common.distributed import keep_fsdp_on_cpu, save_final
from training.common.logs import CsvLogCallback
from training.common.models import load_causal_lm, load_tokenizer
from training.common.options import training_arguments
from training.common.resume import load_completed, plan_resume, say_already_done
from training.common.run_summary import RunSummary, read_summary
from training.config import ConfigError, config_to_dict
from training.sft.config import SftConfig
from training.sft.data import SftData, build_sft_data

if TYPE_CHECKING:
    from transformers import PreTrainedModel

log = logging.getLogger(__name__)

FINAL_DIR = "final"


def resolve_system_prompt(config: SftConfig) -> str:
    if config.data.system_prompt is not None:
        return config.data.system_prompt
    from soro.settings import Settings

    return Settings().system_prompt


def check_method_supported(config: SftConfig) -> None:
    """QLoRA needs a CUDA GPU and bitsandbytes; say so before any data or weights are loaded."""
    if config.method != "qlora":
        return
    import importlib.util

    import torch

    if not torch.cuda.is_available():
        raise ConfigError(
            "method: qlora quantises the frozen model to 4 bits with bitsandbytes, which needs a CUDA GPU; "
            "none is visible here. Use method: lora (or full) on this machine."
        )
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ConfigError("method: qlora needs bitsandbytes: pip install -e '.[train]' on the GPU machine")
    if config.model.precision == "32-true":
        raise ConfigError("method: qlora computes in bf16: set model.precision to bf16-mixed or bf16-true")


def _load_model(config: SftConfig) -> PreTrainedModel:
    quantization_config = None
    if config.method == "qlora":
        import torch
        from transformers import BitsAndBytesConfig

        quantization_config = BitsAndBytesConfig(  # type: ignore[no-untyped-call]
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16,
        )
    return load_causal_lm(
        config.model.name_or_path,
        precision=config.model.precision,
        attn_implementation=config.model.attn_implementation,
        quantization_config=quantization_config,
    )


def _peft_config(config: SftConfig) -> Any:
    if config.method == "full":
        return None
    from peft import LoraConfig

    return LoraConfig(
        r=config.lora.r,
        lora_alpha=config.lora.alpha,
        lora_dropout=config.lora.dropout,
        target_modules=list(config.lora.target_modules),
        task_type="CAUSAL_LM",
    )


def build_sft_trainer(config: SftConfig, *, callbacks: Sequence[TrainerCallback] = ()) -> tuple[Any, SftData]:
    """The SFTTrainer for ``config`` (labels: assistant tokens only) and the validated data it trains on."""
    from trl.trainer.sft_config import SFTConfig
    from trl.trainer.sft_trainer import SFTTrainer

    check_method_supported(config)
    output_dir = config.output_dir
    output_dir.mkdir(parents=True, exist_ok=True)
    args = training_arguments(
        SFTConfig,
        output_dir,
        config.model,
        config.train,
        max_length=config.data.max_length,
        packing=config.data.packing,
        packing_strategy="bfd",
        # The examples carry their own assistant masks (template-independent), which TRL applies as given.
        assistant_only_loss=False,
        completion_only_loss=False,
    )
    keep_fsdp_on_cpu()
    tokenizer = load_tokenizer(config.model.name_or_path)
    with args.main_process_first(desc="validate and tokenise"):
        data = build_sft_data(
            config.data, tokenizer, system_prompt=resolve_system_prompt(config), seed=config.train.seed
        )
    log.info("data: %s", json.dumps({k: v for k, v in data.report.as_dict().items() if k != "examples"}))
    if args.process_index == 0:
        (output_dir / "data_report.json").write_text(
            json.dumps(data.report.as_dict(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
    trainer = SFTTrainer(
        model=_load_model(config),
        args=args,
        train_dataset=data.train,
        eval_dataset=data.validation,
        processing_class=tokenizer,
        peft_config=_peft_config(config),
        callbacks=[CsvLogCallback(output_dir / "metrics.csv"), *callbacks],
    )
    return trainer, data


def run_sft(config: SftConfig, *, callbacks: Sequence[TrainerCallback] = ()) -> Path:
    """Train as ``config`` says and return the final folder (full model, or LoRA adapter and tokenizer)."""
    final_dir = config.output_dir / FINAL_DIR
    plan = plan_resume(config.output_dir, config.train, config, final_dir)
    if plan.done:
        say_already_done(final_dir, plan)
        return final_dir
    trainer, data = build_sft_trainer(config, callbacks=callbacks)
    if plan.completed:
        load_completed(trainer, plan)
    else:
        trainer.train(resume_from_checkpoint=plan.checkpoint)
    metrics = trainer.evaluate()
    save_final(trainer, final_dir)
    if trainer.is_world_process_zero():
        trainer.processing_class.save_pretrained(str(final_dir))
        RunSummary(
            kind="sft",
            base_model=config.model.name_or_path,
            data={
                "train_files": [str(path) for path in config.data.train],
                "validation_files": [str(path) for path in config.data.validation],
                "system_prompt": data.system_prompt,
                "method": config.method,
                **{k: v for k, v in data.report.as_dict().items() if k != "examples"},
            },
            steps=trainer.state.global_step,
            metrics={key: float(value) for key, value in metrics.items()},
            config=config_to_dict(config),
            parent=read_summary(Path(config.model.name_or_path)),
        ).write(final_dir)
    return final_dir
