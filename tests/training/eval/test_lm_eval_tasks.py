"""The lm-evaluation-harness task files load local files and reproduce ``soro eval``'s numbers.

``lm_eval`` runs as a user would run it: its own command line, ``--include_path`` pointing at our task files,
the working directory at the data root the YAML paths are relative to, no network.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from training.eval.runner import RunOutcome

pytestmark = [pytest.mark.slow, pytest.mark.train, pytest.mark.shared_data]

TASK_FILES = Path(__file__).resolve().parents[3] / "training" / "eval" / "lm_eval_tasks"
# lm-eval task name → the matching task of the soro suite
MCQ = {
    "soro_belebele_tgk_Cyrl": "belebele_tgk_Cyrl",
    "soro_sib200_tgk_Cyrl": "sib200_tgk_Cyrl",
    "soro_tajlib": "tajlib",
    "soro_talim": "talim",
}
FLORES = "soro_flores_tgk_Cyrl-eng_Latn"


def test_lm_eval_runs_the_task_files_and_agrees_with_soro_eval(
    tiny_model_dir: Path, eval_data: Path, local_run: RunOutcome, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_DATASETS_CACHE": str(tmp_path / "hf-datasets"),
        "TOKENIZERS_PARALLELISM": "false",
    }
    command = [
        str(Path(sys.executable).with_name("lm_eval")),
        "run",
        "--model",
        "hf",
        "--model_args",
        f"pretrained={tiny_model_dir},dtype=float32",
        "--include_path",
        str(TASK_FILES),
        "--tasks",
        ",".join([*MCQ, FLORES]),
        "--device",
        "cpu",
        "--batch_size",
        "8",
        "--gen_kwargs",
        "max_gen_toks=16",
        "--output_path",
        str(tmp_path / "lm-eval"),
    ]
    done = subprocess.run(command, cwd=eval_data, env=env, capture_output=True, text=True, timeout=400, check=False)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    (results_file,) = (tmp_path / "lm-eval").glob("**/results_*.json")
    results = json.loads(results_file.read_text(encoding="utf-8"))["results"]

    ours = {result.task: result for result in local_run.results}
    for lm_eval_task, soro_task in MCQ.items():
        # Same prompts, same letters, same log-likelihood recipe: the same accuracy, item for item.
        assert results[lm_eval_task]["acc,none"] == pytest.approx(ours[soro_task].headline.value), lm_eval_task
    # FLORES reads the two aligned files of a direction and scores chrF++ on every segment.
    assert 0.0 <= results[FLORES]["chrf++,none"] < 100.0
    n_samples = json.loads(results_file.read_text(encoding="utf-8"))["n-samples"][FLORES]["effective"]
    assert n_samples == len(ours["flores_tgk_Cyrl-eng_Latn"].item_ids)
