"""Continual pretraining end to end on the tiny Gemma 3: it learns, it logs, and a crash costs nothing."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from training.common.logs import read_csv_log
from training.config import config_from_dict
from training.cpt.config import CptConfig

pytestmark = [pytest.mark.train, pytest.mark.shared_data]


def cpt_config(output_dir: Path, base: Path, shards: Path, replay: Path, **train: Any) -> CptConfig:
    loop = {
        "max_steps": 24,
        "per_device_batch_size": 4,
        "learning_rate": 3e-3,
        "warmup_steps": 4,
        "logging_steps": 2,
        "eval_steps": 12,
        "save_steps": 6,
        "report_to": ["tensorboard"],
        **train,
    }
    return config_from_dict(
        {
            "output_dir": str(output_dir),
            "model": {"name_or_path": str(base), "precision": "32-true", "gradient_checkpointing": True},
            "data": {
                "train": [str(shards)],
                "validation_fraction": 0.05,
                "bpc_documents": 8,
                "seq_len": 64,
                "replay": {"paths": [str(replay)], "ratio": 0.1},
            },
            "train": loop,
        },
        CptConfig,
    )


@pytest.fixture(scope="module")
def finished_run(
    tiny_model_dir: Path, prose_shards: Path, english_replay: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[CptConfig, Path]:
    from training.cpt.train import run_cpt

    config = cpt_config(tmp_path_factory.mktemp("cpt") / "run", tiny_model_dir, prose_shards, english_replay)
    return config, run_cpt(config)


def test_cpt_lowers_held_out_loss_and_bits_per_character(
    finished_run: tuple[CptConfig, Path], tiny_model_dir: Path
) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from training.common.bpc import bits_per_character
    from training.cpt.data import build_cpt_data

    config, final = finished_run
    tokenizer = AutoTokenizer.from_pretrained(final)
    texts = build_cpt_data(config.data, tokenizer, seed=config.train.seed).validation_texts
    before = bits_per_character(AutoModelForCausalLM.from_pretrained(tiny_model_dir), tokenizer, texts, max_length=64)
    after = bits_per_character(AutoModelForCausalLM.from_pretrained(final), tokenizer, texts, max_length=64)
    assert after.value < before.value - 0.5, (before.value, after.value)

    log = read_csv_log(config.output_dir / "metrics.csv")
    eval_losses = [row["value"] for row in log if row["name"] == "eval_loss"]
    assert len(eval_losses) >= 2 and eval_losses[-1] < eval_losses[0]
    logged_bpc = [row["value"] for row in log if row["name"] == "eval_bits_per_character"]
    assert logged_bpc[-1] == pytest.approx(after.value, rel=1e-4)


def test_cpt_logs_schedule_checkpoints_and_summary(finished_run: tuple[CptConfig, Path]) -> None:
    from training.common.run_summary import read_summary

    config, final = finished_run
    log = read_csv_log(config.output_dir / "metrics.csv")
    rates = {row["step"]: row["value"] for row in log if row["name"] == "learning_rate"}
    peak = config.train.learning_rate
    # Linear warm-up to the peak, then cosine decay towards min_lr_ratio × peak.
    assert rates[2] < rates[4] < peak
    assert rates[6] == pytest.approx(peak, rel=0.05)
    assert rates[6] > rates[12] > rates[24] >= peak * config.train.min_lr_ratio
    assert any(row["name"] == "loss" for row in log)
    assert list((config.output_dir / "runs").rglob("events.out.tfevents.*")), "no TensorBoard events"
    checkpoints = sorted(p.name for p in config.output_dir.glob("checkpoint-*"))
    assert checkpoints == ["checkpoint-12", "checkpoint-18", "checkpoint-24"]  # every 6 steps, newest 3 kept

    summary = read_summary(final)
    assert summary is not None and summary.kind == "cpt" and summary.steps == 24
    assert summary.data["replay_share"] > 0.05
    assert math.isfinite(summary.metrics["eval_bits_per_character"])


def test_bits_per_character_is_the_token_loss_over_characters(tiny_model_dir: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from training.common.bpc import bits_per_character

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    text = "Забони тоҷикӣ забони давлатии Ҷумҳурии Тоҷикистон аст."
    ids = torch.tensor([[tokenizer.bos_token_id, *tokenizer(text, add_special_tokens=False)["input_ids"]]])
    with torch.no_grad():
        loss = float(model(input_ids=ids, labels=ids).loss)
    score = bits_per_character(model, tokenizer, [text, ""], max_length=256)
    assert score.tokens == ids.shape[1] - 1
    assert score.value == pytest.approx(loss * score.tokens / len(text) / math.log(2), rel=1e-5)
    assert score.loss_per_token == pytest.approx(loss, rel=1e-5)


class _Crash(Exception):
    pass


def test_run_killed_midway_resumes_to_the_same_weights(
    tiny_model_dir: Path, prose_shards: Path, english_replay: Path, tmp_path: Path
) -> None:
    import torch
    from safetensors.torch import load_file
    from transformers import TrainerCallback

    from training.cpt.train import run_cpt

    class CrashAfterStep(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.global_step == 9:  # past checkpoint-6, before checkpoint-12
                raise _Crash

    settings = {"max_steps": 12, "eval_steps": 100, "report_to": []}
    straight = run_cpt(cpt_config(tmp_path / "straight", tiny_model_dir, prose_shards, english_replay, **settings))
    crashed = cpt_config(tmp_path / "crashed", tiny_model_dir, prose_shards, english_replay, **settings)
    with pytest.raises(_Crash):
        run_cpt(crashed, callbacks=[CrashAfterStep()])
    assert sorted(p.name for p in crashed.output_dir.glob("checkpoint-*")) == ["checkpoint-6"]
    resumed = run_cpt(crashed)  # the same command again, as after a crash

    expected, actual = load_file(straight / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert expected.keys() == actual.keys()
    for name, tensor in expected.items():
        assert torch.equal(tensor, actual[name]), name
    losses = [
        (row["step"], row["value"]) for row in read_csv_log(crashed.output_dir / "metrics.csv") if row["name"] == "loss"
    ]
    straight_losses = [
        (row["step"], row["value"]) for row in read_csv_log(straight.parent / "metrics.csv") if row["name"] == "loss"
    ]
    # The crashed run logged steps 2–8, then the resumed one 8–12 again from checkpoint-6: same numbers.
    assert dict(losses) == dict(straight_losses)


def test_rerunning_a_finished_run_is_a_no_op_that_says_so(
    finished_run: tuple[CptConfig, Path], caplog: pytest.LogCaptureFixture
) -> None:
    import hashlib
    import logging
    import shutil

    from training.cpt.train import run_cpt

    config, final = finished_run

    def state() -> tuple[list[str], str]:
        checkpoints = sorted(p.name for p in config.output_dir.glob("checkpoint-*"))
        return checkpoints, hashlib.sha256((final / "model.safetensors").read_bytes()).hexdigest()

    before = state()
    with caplog.at_level(logging.WARNING, logger="training.common.resume"):
        assert run_cpt(config) == final  # "run the same command again"
    assert state() == before  # no checkpoint-25, the same final weights
    assert "already finished at step 24" in caplog.text

    # Killed after the last checkpoint but before final/ was written: the checkpoint is saved, not trained on.
    shutil.rmtree(final)
    run_cpt(config)
    assert state() == before
