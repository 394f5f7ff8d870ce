"""CPT and SFT over two CPU processes (gloo), under DDP and FSDP, launched as the docs say.

Two processes with half the batch each must train what one process with the whole batch trains: the same
loss curve (within float noise) and the same final weights. Under FSDP every checkpoint holds one shard of
the model per rank, and a run that lost its newest checkpoint resumes from the one before.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from soro.ports import free_port
from training.common.logs import read_csv_log

pytestmark = [pytest.mark.train, pytest.mark.slow, pytest.mark.shared_data]

REPO_ROOT = Path(__file__).resolve().parents[3]
ACCELERATE = Path(sys.executable).with_name("accelerate")
LAUNCH_CONFIGS = REPO_ROOT / "configs" / "train" / "accelerate"


def _write(path: Path, raw: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def _train(verb: str, config: Path, output_dir: Path, *, launch: str | None, batch: int) -> Path:
    """``soro train VERB`` in one process, or under ``accelerate launch`` with a shipped CPU config."""
    overrides = ["--set", f"output_dir={output_dir}", "--set", f"train.per_device_batch_size={batch}"]
    if launch is None:
        command = [str(Path(sys.executable).with_name("soro")), "train", verb, str(config), *overrides]
    else:
        command = [
            str(ACCELERATE),
            "launch",
            "--config_file",
            str(LAUNCH_CONFIGS / launch),
            "--main_process_ip",
            "127.0.0.1",
            "--main_process_port",
            str(free_port()),
            "-m",
            "training.train_cli",
            verb,
            str(config),
            *overrides,
        ]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    if launch is not None:
        # Two processes really ran: every checkpoint holds each process's RNG state.
        for checkpoint in output_dir.glob("checkpoint-*"):
            assert sorted(p.name for p in checkpoint.glob("rng_state*.pth")) == ["rng_state_0.pth", "rng_state_1.pth"]
    return output_dir / "final"


def _losses(output_dir: Path) -> dict[int, float]:
    return {
        int(row["step"]): float(row["value"])
        for row in read_csv_log(output_dir / "metrics.csv")
        if row["name"] == "loss"
    }


def _assert_same_weights(a: Path, b: Path) -> None:
    import torch
    from safetensors.torch import load_file

    left, right = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert left.keys() == right.keys()
    for name, tensor in left.items():
        torch.testing.assert_close(right[name], tensor, rtol=1e-4, atol=1e-5, msg=name)


@pytest.fixture(scope="module")
def prose_shards(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.training.cpt.conftest import write_prose_shards

    return write_prose_shards(shared_data, tmp_path_factory.mktemp("shards"))


@pytest.fixture(scope="module")
def seed_instructions(shared_data: Path) -> Path:
    return shared_data / "instructions" / "instruction_seed.jsonl"


@pytest.fixture(scope="module")
def cpt_file(tiny_model_dir: Path, prose_shards: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cpt-dist")
    raw = {
        "output_dir": str(folder / "unused"),
        "model": {"name_or_path": str(tiny_model_dir), "precision": "32-true", "gradient_checkpointing": False},
        "data": {"train": [str(prose_shards)], "validation_fraction": 0.05, "bpc_documents": 2, "seq_len": 64},
        "train": {
            "max_steps": 6,
            "learning_rate": 3e-3,
            "warmup_steps": 1,
            "logging_steps": 1,
            "eval_steps": 100,
            "save_steps": 3,
            "report_to": [],
        },
    }
    return _write(folder / "cpt.yaml", raw)


@pytest.fixture(scope="module")
def single_process_cpt(cpt_file: Path) -> Path:
    return _train("cpt", cpt_file, cpt_file.parent / "one", launch=None, batch=4)


def test_cpt_ddp_over_two_cpu_processes_trains_what_one_process_trains(
    cpt_file: Path, single_process_cpt: Path
) -> None:
    out = cpt_file.parent / "ddp"
    final = _train("cpt", cpt_file, out, launch="cpu-ddp.yaml", batch=2)
    one = _losses(single_process_cpt.parent)
    assert sorted(one) == sorted(_losses(out)) == [1, 2, 3, 4, 5, 6]
    assert _losses(out) == pytest.approx(one, rel=1e-5)
    _assert_same_weights(single_process_cpt, final)
    assert (out / "checkpoint-6" / "model.safetensors").is_file()  # DDP: whole-model checkpoints


def test_cpt_fsdp_shards_checkpoints_matches_one_process_and_resumes(cpt_file: Path, single_process_cpt: Path) -> None:
    out = cpt_file.parent / "fsdp"
    final = _train("cpt", cpt_file, out, launch="cpu-fsdp.yaml", batch=2)
    assert _losses(out) == pytest.approx(_losses(single_process_cpt.parent), rel=1e-5)
    _assert_same_weights(single_process_cpt, final)  # gathered into one servable file at the end
    for step in (3, 6):
        checkpoint = out / f"checkpoint-{step}"
        assert not (checkpoint / "model.safetensors").exists()  # sharded, not DDP's whole model
        shards = sorted(p.name for p in (checkpoint / "pytorch_model_fsdp_0").glob("*.distcp"))
        assert shards == ["__0_0.distcp", "__1_0.distcp"], shards  # one shard per rank

    # Lose the newest checkpoint and the result: the same command continues from checkpoint-3.
    expected = final.parent / "expected"
    shutil.copytree(final, expected)
    shutil.rmtree(out / "checkpoint-6")
    shutil.rmtree(final)
    resumed = _train("cpt", cpt_file, out, launch="cpu-fsdp.yaml", batch=2)
    _assert_same_weights(expected, resumed)


@pytest.fixture(scope="module")
def sft_file(tiny_model_dir: Path, seed_instructions: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("sft-dist")
    raw = {
        "output_dir": str(folder / "unused"),
        "model": {"name_or_path": str(tiny_model_dir), "precision": "32-true", "gradient_checkpointing": False},
        "data": {"train": [str(seed_instructions)], "max_length": 256, "validation_fraction": 0.15},
        "train": {
            "max_steps": 4,
            "learning_rate": 2e-3,
            "warmup_steps": 1,
            "logging_steps": 1,
            "eval_steps": 100,
            "save_steps": 4,
            "report_to": [],
        },
    }
    return _write(folder / "sft.yaml", raw)


@pytest.fixture(scope="module")
def single_process_sft(sft_file: Path) -> Path:
    return _train("sft", sft_file, sft_file.parent / "one", launch=None, batch=4)


@pytest.mark.parametrize("launch", ["cpu-ddp.yaml", "cpu-fsdp.yaml"])
def test_sft_over_two_cpu_processes_trains_what_one_process_trains(
    sft_file: Path, single_process_sft: Path, launch: str
) -> None:
    out = sft_file.parent / launch.removesuffix(".yaml")
    two = _train("sft", sft_file, out, launch=launch, batch=2)
    assert _losses(out) == pytest.approx(_losses(single_process_sft.parent), rel=1e-4)
    _assert_same_weights(single_process_sft, two)
