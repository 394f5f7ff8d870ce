"""SFT with TRL on the tiny Gemma 3: labels in the batches the model sees, validation loss, LoRA, QLoRA."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from training.config import ConfigError, config_from_dict
from training.sft.config import SftConfig

pytestmark = [pytest.mark.train, pytest.mark.shared_data]


def sft_config(output_dir: Path, base: Path, data: Path, **overrides: Any) -> SftConfig:
    raw: dict[str, Any] = {
        "output_dir": str(output_dir),
        "model": {"name_or_path": str(base), "precision": "32-true", "gradient_checkpointing": False},
        "data": {"train": [str(data)], "max_length": 256, "validation_fraction": 0.15},
        "train": {
            "max_steps": 16,
            "per_device_batch_size": 4,
            "learning_rate": 2e-3,
            "warmup_steps": 2,
            "logging_steps": 4,
            "eval_steps": 8,
            "save_steps": 8,
            "report_to": [],
        },
        **overrides,
    }
    return config_from_dict(raw, SftConfig)


def test_batches_carry_labels_on_assistant_tokens_only(
    tiny_model_dir: Path, seed_instructions: Path, tmp_path: Path
) -> None:
    from training.sft.train import build_sft_trainer

    trainer, data = build_sft_trainer(sft_config(tmp_path / "run", tiny_model_dir, seed_instructions))
    tokenizer = trainer.processing_class
    batch = next(iter(trainer.get_train_dataloader()))
    assert batch["labels"].shape == batch["input_ids"].shape
    end_of_turn = tokenizer.convert_tokens_to_ids("<end_of_turn>")
    for ids, labels, attention in zip(batch["input_ids"], batch["labels"], batch["attention_mask"], strict=True):
        learnt = ids[labels != -100]
        assert (labels[labels != -100] == learnt).all()
        text = tokenizer.decode(learnt)
        # Exactly one answer per seed example, ending where the model must stop; nothing of the prompt.
        assert text.endswith("<end_of_turn>\n") and text.count("<end_of_turn>") == 1
        assert int((learnt == end_of_turn).sum()) == 1
        prompt = tokenizer.decode(ids[(labels == -100) & (attention == 1)])
        assert prompt.startswith("<bos><start_of_turn>user\nТу Соро ҳастӣ") and prompt.endswith(
            "<start_of_turn>model\n"
        )
        assert (labels[attention == 0] == -100).all()  # padding never counts
    assert data.report.kept == data.report.train + data.report.validation


def test_full_sft_lowers_validation_loss(tiny_model_dir: Path, seed_instructions: Path, tmp_path: Path) -> None:
    from training.common.logs import read_csv_log
    from training.common.run_summary import read_summary
    from training.sft.train import build_sft_trainer, run_sft

    config = sft_config(tmp_path / "run", tiny_model_dir, seed_instructions)
    before = build_sft_trainer(config)[0].evaluate()["eval_loss"]
    final = run_sft(config)
    after = [row["value"] for row in read_csv_log(config.output_dir / "metrics.csv") if row["name"] == "eval_loss"][-1]
    assert after < before - 0.3, (before, after)
    summary = read_summary(final)
    assert summary is not None and summary.kind == "sft" and summary.steps == 16
    assert summary.data["method"] == "full" and summary.data["system_prompt"].startswith("Ту Соро")
    assert (final / "model.safetensors").is_file() and (final / "chat_template.jinja").is_file()


def test_lora_run_saves_an_adapter(tiny_model_dir: Path, seed_instructions: Path, tmp_path: Path) -> None:
    from training.sft.train import run_sft

    config = sft_config(
        tmp_path / "lora",
        tiny_model_dir,
        seed_instructions,
        method="lora",
        lora={"r": 4, "alpha": 8, "dropout": 0.0},
    )
    config = config_from_dict({**_as_raw(config), "train": {**_as_raw(config)["train"], "max_steps": 4}}, SftConfig)
    final = run_sft(config)
    assert (final / "adapter_config.json").is_file() and not (final / "model.safetensors").exists()
    adapter = (final / "adapter_model.safetensors").read_bytes()
    assert run_sft(config) == final  # the same command again: nothing left to do
    assert sorted(p.name for p in config.output_dir.glob("checkpoint-*")) == ["checkpoint-4"]
    assert (final / "adapter_model.safetensors").read_bytes() == adapter


def _as_raw(config: SftConfig) -> dict[str, Any]:
    from training.config import config_to_dict

    return config_to_dict(config)


def test_qlora_without_a_gpu_fails_clearly(tiny_model_dir: Path, seed_instructions: Path, tmp_path: Path) -> None:
    import torch

    from training.sft.train import run_sft

    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present: QLoRA is allowed here")
    config = sft_config(tmp_path / "q", tiny_model_dir, seed_instructions, method="qlora")
    with pytest.raises(ConfigError, match="needs a CUDA GPU"):
        run_sft(config)
    assert not (tmp_path / "q").exists()  # failed before writing anything
