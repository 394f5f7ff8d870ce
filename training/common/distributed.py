"""FSDP on CPU processes: what accelerate's state machine leaves out.

``accelerate launch`` with an FSDP config sets ``ACCELERATE_USE_FSDP``, but accelerate enables FSDP only when
the process group's device type is a GPU-like one; on CPUs (gloo) the type is ``MULTI_CPU`` and the run
silently becomes plain DDP: whole-model checkpoints, the DDP loss curve. Before the Trainer builds its
Accelerator, a CPU process group that was asked for FSDP is relabelled as a multi-device one, so accelerate
wraps the model with FSDP2 (``fully_shard``) on the CPU device mesh and saves sharded state dicts.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def fsdp_requested() -> bool:
    return os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true"


def keep_fsdp_on_cpu() -> None:
    """Call after the TrainingArguments exist (they start the process group) and before the Trainer."""
    import torch

    if not fsdp_requested() or torch.cuda.is_available():
        return
    from accelerate.state import DistributedType, PartialState

    state = PartialState()
    if state.distributed_type == DistributedType.MULTI_CPU:
        state.distributed_type = DistributedType.MULTI_GPU  # the branch where AcceleratorState turns FSDP on
        log.info("FSDP over %d CPU processes (gloo)", state.num_processes)


def save_final(trainer: Any, folder: Path) -> None:
    """The servable weights of a finished run in ``folder``: whole safetensors whatever the sharding.

    Under FSDP with sharded state dicts, ``Trainer.save_model`` writes per-rank shards only (nothing vLLM or
    the next stage can load), so the full state dict is gathered (every rank takes part) and rank 0 saves it.
    """
    if not getattr(trainer, "is_fsdp_enabled", False):
        trainer.save_model(str(folder))
        return
    state_dict = trainer.accelerator.get_state_dict(trainer.model)
    if trainer.is_world_process_zero():
        model = trainer.accelerator.unwrap_model(trainer.model)
        # Gathered, tied weights (Gemma's lm_head is its embedding) arrive as separate tensors: keep one name.
        unique = {name for name, _ in model.named_parameters()}
        tied = {name for name, _ in model.named_parameters(remove_duplicate=False)} - unique
        state_dict = {name: tensor for name, tensor in state_dict.items() if name not in tied}
        model.save_pretrained(str(folder), state_dict=state_dict)
    trainer.accelerator.wait_for_everyone()
