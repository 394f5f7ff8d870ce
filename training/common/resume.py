"""Where a rerun of a training command starts: from scratch, from the newest checkpoint, or nowhere at all.

The Trainer, resumed from a checkpoint already at ``max_steps``, runs one more optimizer step before it
checks the limit: each rerun of a finished run added ``checkpoint-N+1`` and overwrote ``final/`` with other
weights. So a run whose newest checkpoint has reached ``max_steps`` is never handed back to ``train()``:
with its ``final/`` written by the same config it is left as it is; without (the process died between the
last step and the final save) its last checkpoint is loaded and only the final evaluation and save run.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.common.options import LoopOptions
from training.common.run_summary import read_summary
from training.config import ConfigError, config_to_dict

log = logging.getLogger(__name__)

STATE_FILE = "trainer_state.json"


@dataclass(frozen=True)
class ResumePlan:
    checkpoint: str | None  # the checkpoint to continue from (or, when ``completed``, to load)
    completed: bool  # the checkpoint has reached max_steps: no optimizer step is left to take
    done: bool  # completed, and final/ already holds this config's result: nothing at all to do
    steps: int = 0


def checkpoint_step(checkpoint: str | Path) -> int:
    state = Path(checkpoint) / STATE_FILE
    if not state.is_file():
        return 0
    return int(json.loads(state.read_text(encoding="utf-8")).get("global_step", 0))


def plan_resume(output_dir: Path, loop: LoopOptions, config: object, final_dir: Path) -> ResumePlan:
    """How a run of ``config`` into ``output_dir`` continues; raises when a finished run there had another config."""
    if not loop.resume or not output_dir.is_dir():
        return ResumePlan(None, completed=False, done=False)
    from transformers.trainer_utils import get_last_checkpoint

    checkpoint: str | None = get_last_checkpoint(str(output_dir))  # type: ignore[no-untyped-call]
    if checkpoint is None:
        return ResumePlan(None, completed=False, done=False)
    steps = checkpoint_step(checkpoint)
    if steps < loop.max_steps:
        return ResumePlan(checkpoint, completed=False, done=False, steps=steps)
    summary = read_summary(final_dir)
    if summary is None:
        return ResumePlan(checkpoint, completed=True, done=False, steps=steps)
    if _comparable(summary.config) != _comparable(config_to_dict(config)):
        raise ConfigError(
            f"{output_dir} holds a run finished at step {summary.steps} with another config; "
            "raise train.max_steps to continue it, or set train.resume: false (or another output_dir) to start over"
        )
    return ResumePlan(checkpoint, completed=True, done=True, steps=summary.steps)


def _comparable(config: dict[str, Any]) -> str:
    return json.dumps(config, sort_keys=True, default=str)


def say_already_done(final_dir: Path, plan: ResumePlan) -> None:
    log.warning("already finished at step %d: %s is up to date, nothing to do", plan.steps, final_dir)


def load_completed(trainer: Any, plan: ResumePlan) -> None:
    """Put a completed checkpoint's weights and state into ``trainer`` instead of training past its last step."""
    from transformers import TrainerState

    assert plan.checkpoint is not None
    log.info("%s reached max_steps: loading it for the final evaluation and save", plan.checkpoint)
    trainer._load_from_checkpoint(plan.checkpoint)
    trainer.state = TrainerState.load_from_json(str(Path(plan.checkpoint) / STATE_FILE))
    # Loggers open their files at the start of training; without it TensorBoard's would write to ./runs.
    trainer.callback_handler.on_train_begin(trainer.args, trainer.state, trainer.control)
