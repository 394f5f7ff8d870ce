"""Suite configs: the shipped ones load; mistakes are errors that name the offending key."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.config import ConfigError
from training.eval.config import LatencyTask, TranslationTask, eval_config_from_dict, load_eval_config

CONFIGS = Path(__file__).resolve().parents[3] / "configs" / "eval"


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_the_shipped_suite_configs_load(path: Path) -> None:
    config = load_eval_config(path)
    assert config.tasks
    assert len({task.name for task in config.tasks}) == len(config.tasks)


def test_tasks_are_typed_by_their_type_and_get_their_defaults() -> None:
    config = eval_config_from_dict(
        {
            "name": "x",
            "tasks": [
                {"type": "translation", "path": "flores200", "source": "tgk_Cyrl", "target": "eng_Latn"},
                {"type": "latency", "prompts": {"path": "prompts.txt"}},
            ],
        }
    )
    translation, latency = config.tasks
    assert isinstance(translation, TranslationTask)
    assert translation.name == "flores_tgk_Cyrl-eng_Latn"
    assert translation.path == Path("flores200")
    assert isinstance(latency, LatencyTask)
    assert latency.prompts.field == "instruction"


@pytest.mark.parametrize(
    ("tasks", "message"),
    [
        ([{"type": "tajlib", "path": "t.jsonl", "lmit": 5}], r"tasks\[0\]: unknown key\(s\) lmit"),
        ([{"type": "mmlu", "path": "m.jsonl"}], r"tasks\[0\].type: unknown task type 'mmlu'"),
        ([{"type": "english_mcq", "path": "m.jsonl"}], r"tasks\[0\]: layout: required key is missing"),
        ([{"type": "tajlib", "path": "a.jsonl"}, {"type": "tajlib", "path": "b.jsonl"}], "repeated: tajlib"),
        ([], "non-empty list of tasks"),
    ],
)
def test_config_mistakes_are_errors_that_name_the_key(tasks: list[dict[str, object]], message: str) -> None:
    with pytest.raises((ConfigError, ValueError), match=message):
        eval_config_from_dict({"name": "x", "tasks": tasks})


def test_a_model_section_needs_exactly_one_backend() -> None:
    with pytest.raises(ConfigError, match=r"exactly one of model\.local and model\.endpoint"):
        eval_config_from_dict(
            {
                "name": "x",
                "model": {"local": {"path": "m"}, "endpoint": {"base_url": "http://127.0.0.1:8000/v1"}},
                "tasks": [{"type": "tajlib", "path": "t.jsonl"}],
            }
        )
