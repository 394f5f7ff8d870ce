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


@pytest.mark.parametrize(("name", "distributed_type"), [("cpu-ddp.yaml", "MULTI_GPU"), ("cpu-fsdp.yaml", "FSDP")])
def test_cpu_launch_configs_go_through_torchrun_on_the_cpu(name: str, distributed_type: str) -> None:
    """Two CPU processes: a multi-device type (so accelerate uses torchrun, not its one-process launcher)
    with use_cpu (so each process runs on the CPU with gloo)."""
    from accelerate.commands.config.config_args import load_config_from_file

    config = load_config_from_file(str(CONFIGS / "accelerate" / name))
    assert str(config.distributed_type).endswith(distributed_type)
    assert config.use_cpu is True and config.num_processes == 2
    if distributed_type == "FSDP":
        assert config.fsdp_config["fsdp_state_dict_type"] == "SHARDED_STATE_DICT"


def test_slurm_script_renders_one_launcher_per_node(tmp_path: Path) -> None:
    """A dry run: scontrol and srun are stand-ins that print what the script would start on each node."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "scontrol").write_text('#!/bin/sh\nprintf "gpu-node-01\\ngpu-node-02\\n"\n', encoding="utf-8")
    # srun runs its command once per node, as Slurm would, with that node's SLURM_NODEID.
    (bin_dir / "srun").write_text(
        '#!/bin/bash\nshift\nfor node in 0 1; do SLURM_NODEID=$node "$@"; done\n', encoding="utf-8"
    )
    for tool in ("scontrol", "srun"):
        (bin_dir / tool).chmod(0o755)
    fake_venv = tmp_path / "repo" / ".venv" / "bin"
    fake_venv.mkdir(parents=True)
    (fake_venv / "accelerate").write_text('#!/bin/sh\necho "accelerate $*"\n', encoding="utf-8")
    (fake_venv / "accelerate").chmod(0o755)
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "SLURM_JOB_NODELIST": "gpu-node-[01-02]",
        "SLURM_NNODES": "2",
        "SLURM_GPUS_PER_NODE": "8",
    }
    done = subprocess.run(
        ["bash", str(CONFIGS / "slurm" / "cpt-multinode.sbatch"), "configs/train/cpt-4b.yaml"],
        cwd=tmp_path / "repo",
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    launches = [line.split() for line in done.stdout.splitlines() if line.startswith("accelerate launch")]
    assert len(launches) == 2, done.stdout + done.stderr
    for rank, words in enumerate(launches):
        options = dict(zip(words[2::2], words[3::2], strict=False))
        assert options["--config_file"] == "configs/train/accelerate/fsdp.yaml"
        assert (REPO_ROOT / options["--config_file"]).is_file()
        assert options["--num_machines"] == "2" and options["--num_processes"] == "16"
        assert options["--machine_rank"] == str(rank) and options["--main_process_ip"] == "gpu-node-01"
        assert words[-4:] == ["-m", "training.train_cli", "cpt", "configs/train/cpt-4b.yaml"]
        assert (REPO_ROOT / words[-1]).is_file()
