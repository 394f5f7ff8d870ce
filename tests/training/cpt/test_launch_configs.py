"""The multi-GPU launch configs shipped for `accelerate launch` and Slurm parse and name real things."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
CONFIGS = REPO_ROOT / "configs" / "train"

pytestmark = pytest.mark.train


@pytest.mark.parametrize(
    ("name", "distributed_type"),
    [("ddp.yaml", "MULTI_GPU"), ("fsdp.yaml", "FSDP"), ("deepspeed-zero3.yaml", "DEEPSPEED")],
)
def test_accelerate_configs_parse(name: str, distributed_type: str) -> None:
    from accelerate.commands.config.config_args import load_config_from_file

    config = load_config_from_file(str(CONFIGS / "accelerate" / name))
    assert str(config.distributed_type).endswith(distributed_type)
    assert config.num_machines == 1 and config.num_processes == 8


def test_fsdp_fully_shards_gemma3_decoder_layers() -> None:
    from accelerate.commands.config.config_args import load_config_from_file
    from transformers.models.gemma3 import modeling_gemma3

    fsdp = load_config_from_file(str(CONFIGS / "accelerate" / "fsdp.yaml")).fsdp_config
    assert fsdp["fsdp_auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"
    assert fsdp["fsdp_reshard_after_forward"] is True
    assert hasattr(modeling_gemma3, fsdp["fsdp_transformer_layer_cls_to_wrap"])


def test_deepspeed_is_zero3_with_servable_checkpoints() -> None:
    from accelerate.commands.config.config_args import load_config_from_file

    deepspeed = load_config_from_file(str(CONFIGS / "accelerate" / "deepspeed-zero3.yaml")).deepspeed_config
    assert deepspeed["zero_stage"] == 3 and deepspeed["zero3_save_16bit_model"] is True


def test_slurm_script_is_valid_bash() -> None:
    script = CONFIGS / "slurm" / "cpt-multinode.sbatch"
    subprocess.run(["bash", "-n", str(script)], check=True)
    assert "training.train_cli cpt" in script.read_text(encoding="utf-8")
