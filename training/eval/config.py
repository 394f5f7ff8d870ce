"""The YAML config of ``soro eval run``: which model, which tasks on which local files, where results go.

Task paths are relative to ``data_root``; ``data_root`` and ``output_dir`` are relative to the working
directory, as on the command line. Each entry of ``tasks`` names its ``type``; unknown keys are errors.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tajik.sms import SMS_INSTRUCTION
from training.config import ConfigError, config_from_dict, read_yaml
from training.eval.backends.local import LocalPrecision

Scoring = Literal["auto", "loglikelihood", "generation"]


@dataclass(frozen=True)
class LocalModelConfig:
    path: Path
    precision: LocalPrecision = "auto"
    batch_size: int = 8
    # Longest token window scored at once; longer texts are scored in windows (bits per character).
    max_length: int = 2048


@dataclass(frozen=True)
class EndpointConfig:
    base_url: str
    model: str | None = None  # None: the first model the server lists
    concurrency: int = 8
    timeout_seconds: float = 300.0
    # The key is read from this environment variable, never from the file.
    api_key_env: str = "SORO_LLM_API_KEY"


@dataclass(frozen=True)
class ModelConfig:
    local: LocalModelConfig | None = None
    endpoint: EndpointConfig | None = None

    def __post_init__(self) -> None:
        if (self.local is None) == (self.endpoint is None):
            raise ValueError("give exactly one of model.local and model.endpoint")


# Tasks. ``name`` names the result file and the table row; ``limit`` keeps the first N items.


@dataclass(frozen=True)
class BelebeleTask:
    """Belebele reading comprehension, as released (``tgk_Cyrl.jsonl``)."""

    path: Path
    type: Literal["belebele"] = "belebele"
    name: str = "belebele_tgk_Cyrl"
    limit: int | None = None


@dataclass(frozen=True)
class Sib200Task:
    """SIB-200 topic classification (``data/annotated/tgk_Cyrl/test.tsv``: ``index_id, category, text``)."""

    path: Path
    type: Literal["sib200"] = "sib200"
    name: str = "sib200_tgk_Cyrl"
    limit: int | None = None


@dataclass(frozen=True)
class TajlibTask:
    """Entrance-exam MCQ in the TajLiB layout: ``question, option_a..option_d, answer``."""

    path: Path
    type: Literal["tajlib"] = "tajlib"
    name: str = "tajlib"
    limit: int | None = None


@dataclass(frozen=True)
class TalimTask:
    """Exam MCQ in the TALIM layout: ``question``, ``options`` (a JSON list), ``answer``, ``subject``, ``section``."""

    path: Path
    type: Literal["talim"] = "talim"
    name: str = "talim"
    limit: int | None = None


@dataclass(frozen=True)
class EnglishMcqTask:
    """English retention: MMLU (``question, choices, answer``) or ARC (``question, choices{text,label}, answerKey``)."""

    path: Path
    layout: Literal["mmlu", "arc"]
    type: Literal["english_mcq"] = "english_mcq"
    name: str = "english_mcq"
    limit: int | None = None


@dataclass(frozen=True)
class TranslationTask:
    """Translation scored with chrF++: a FLORES-200 folder (``{split}/{lang}.{split}``) or a multi-way JSONL."""

    path: Path
    source: str  # FLORES-200 codes: tgk_Cyrl, eng_Latn, rus_Cyrl
    target: str
    type: Literal["translation"] = "translation"
    name: str = ""  # default: flores_{source}-{target}
    split: str = "devtest"
    # For a multi-way JSONL: which field holds which language.
    fields: dict[str, str] = field(default_factory=lambda: {"tgk_Cyrl": "tg", "eng_Latn": "en", "rus_Cyrl": "ru"})
    max_tokens: int = 256
    limit: int | None = None

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", f"flores_{self.source}-{self.target}")


@dataclass(frozen=True)
class BpcTask:
    """Bits per character on held-out Tajik text files (globs), cut into passages at paragraph ends."""

    paths: list[str]
    type: Literal["bpc"] = "bpc"
    name: str = "bpc_tajik"
    max_chars: int = 2000
    limit: int | None = None


@dataclass(frozen=True)
class PromptsSource:
    """Prompts for the live checks: a text file (one prompt a line) or records with the prompt in ``field``."""

    path: Path
    field: str = "instruction"


@dataclass(frozen=True)
class TajikRepliesTask:
    """Share of answers in Tajik when asked in Tajik, with the service's system prompt."""

    prompts: PromptsSource
    type: Literal["tajik_replies"] = "tajik_replies"
    name: str = "tajik_replies"
    max_tokens: int = 256
    system_prompt: str | None = None  # None: the service's (SORO_SYSTEM_PROMPT)
    limit: int | None = None


@dataclass(frozen=True)
class SmsBudgetTask:
    """Share of answers that fit ``segments`` SMS segments when asked for an SMS-sized answer."""

    prompts: PromptsSource
    type: Literal["sms_budget"] = "sms_budget"
    name: str = "sms_budget"
    segments: int = 2
    instruction: str = SMS_INSTRUCTION
    max_tokens: int = 256
    system_prompt: str | None = None
    limit: int | None = None


@dataclass(frozen=True)
class LatencyTask:
    """Latency percentiles of full answers and of the first token, ``concurrency`` requests at a time."""

    prompts: PromptsSource
    type: Literal["latency"] = "latency"
    name: str = "latency"
    concurrency: int = 4
    max_tokens: int = 128
    system_prompt: str | None = None
    limit: int | None = None


TaskConfig = (
    BelebeleTask
    | Sib200Task
    | TajlibTask
    | TalimTask
    | EnglishMcqTask
    | TranslationTask
    | BpcTask
    | TajikRepliesTask
    | SmsBudgetTask
    | LatencyTask
)
TASK_TYPES: tuple[type[TaskConfig], ...] = (
    BelebeleTask,
    Sib200Task,
    TajlibTask,
    TalimTask,
    EnglishMcqTask,
    TranslationTask,
    BpcTask,
    TajikRepliesTask,
    SmsBudgetTask,
    LatencyTask,
)


@dataclass(frozen=True)
class EvalConfig:
    name: str
    tasks: list[TaskConfig]
    model: ModelConfig | None = None  # or --model / --endpoint on the command line
    data_root: Path = Path(".")
    output_dir: Path = Path("out/eval")  # the run goes to output_dir/name
    # auto: log-likelihoods where the backend has them (a local model), else generation.
    scoring: Scoring = "auto"
    limit: int | None = None  # items per task, for a quick look; a task's own limit wins

    def __post_init__(self) -> None:
        names = [task.name for task in self.tasks]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"task names must differ; repeated: {', '.join(duplicates)}")


def _task_type_name(cls: type[TaskConfig]) -> str:
    default = {f.name: f.default for f in dataclasses.fields(cls)}["type"]
    return str(default)


def task_from_dict(raw: object, where: str) -> TaskConfig:
    types = {_task_type_name(cls): cls for cls in TASK_TYPES}
    if not isinstance(raw, dict) or "type" not in raw:
        raise ConfigError(f"{where}: a task is a mapping with a 'type' ({', '.join(types)})")
    cls = types.get(str(raw["type"]))
    if cls is None:
        raise ConfigError(f"{where}.type: unknown task type {raw['type']!r}; known: {', '.join(types)}")
    try:
        return config_from_dict(raw, cls)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def eval_config_from_dict(raw: dict[str, Any]) -> EvalConfig:
    """Tasks are read one by one by their ``type``, so an error names the task, not every type it is not."""
    tasks_raw = raw.get("tasks")
    if not isinstance(tasks_raw, list) or not tasks_raw:
        raise ConfigError("tasks: a non-empty list of tasks is required")
    tasks = [task_from_dict(task, f"tasks[{i}]") for i, task in enumerate(tasks_raw)]
    # The rest is checked with no tasks, then the tasks are put in (which runs the checks across tasks).
    shell = config_from_dict({**raw, "tasks": []}, EvalConfig)
    return dataclasses.replace(shell, tasks=tasks)


def load_eval_config(path: Path, overrides: Sequence[str] = ()) -> EvalConfig:
    raw = read_yaml(path, overrides)
    try:
        return eval_config_from_dict(raw)
    except (ConfigError, ValueError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
