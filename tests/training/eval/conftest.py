"""An evaluation data folder in every published layout, a suite config over it, and answerers that read its key.

MCQ sets are the small hand-written files in ``fixtures/`` (answers spread evenly over the letters, so a
constant answerer scores exactly chance); translation pairs, held-out text and live prompts are read from the
real Tajik data folder.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.support.vllm import ServedModel
from training.eval.backends.endpoint import Endpoint
from training.eval.config import EvalConfig, eval_config_from_dict
from training.eval.runner import RunOutcome, run_suite

if TYPE_CHECKING:
    from training.eval.backends.local import LocalModel

FIXTURES = Path(__file__).with_name("fixtures")
PAIRS = 6  # UDHR segments in the FLORES-layout folder
PROMPTS = 5  # live-check prompts
TEST_SYSTEM_PROMPT = "Ту Соро ҳастӣ, ёрдамчии меҳрубон."
TAJIK_REPLY = "Салом! Ман Соро ҳастам ва ба шумо бо хурсандӣ кӯмак мекунам."

# The oracle's own copy of SIB-200's topic names as the prompt shows them.
SIB200_NAMES = {
    "science/technology": "илм ва технология",
    "travel": "сайёҳат",
    "politics": "сиёсат",
    "sports": "варзиш",
    "health": "тандурустӣ",
    "entertainment": "фароғат",
    "geography": "ҷуғрофия",
}
_OPTION_LINE = re.compile(r"^([A-J])[.:] (.+)$", re.MULTILINE)


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="session")
def eval_data(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The data root: the MCQ fixtures plus a FLORES-200 folder, held-out text and prompts from the real data."""
    root = tmp_path_factory.mktemp("eval-data")
    shutil.copytree(FIXTURES, root, dirs_exist_ok=True)
    udhr = [row for row in _jsonl(shared_data / "parallel" / "udhr_multiway.jsonl") if len(row["tg"]) < 160]
    flores = root / "flores200" / "devtest"
    flores.mkdir(parents=True)
    for code, field in (("tgk_Cyrl", "tg"), ("eng_Latn", "en"), ("rus_Cyrl", "ru")):
        lines = [" ".join(row[field].split()) for row in udhr[:PAIRS]]
        (flores / f"{code}.devtest").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "heldout").mkdir()
    heldout = (shared_data / "langid" / "udhr_tg.txt").read_text(encoding="utf-8").splitlines()[:8]
    (root / "heldout" / "udhr_tg.txt").write_text("\n".join(heldout) + "\n", encoding="utf-8")
    (root / "prompts").mkdir()
    seed = _jsonl(shared_data / "instructions" / "instruction_seed.jsonl")[:PROMPTS]
    (root / "prompts" / "tajik.jsonl").write_text(
        "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in seed), encoding="utf-8"
    )
    return root


MCQ_TASKS = ("belebele_tgk_Cyrl", "sib200_tgk_Cyrl", "tajlib", "talim", "mmlu", "arc")


def suite_dict(data_root: Path, name: str = "suite") -> dict[str, Any]:
    """Every task type once (translation in both layouts), sized for the tiny model's 512-token window."""
    prompts = {"path": "prompts/tajik.jsonl"}
    return {
        "name": name,
        "data_root": str(data_root),
        "tasks": [
            {"type": "belebele", "path": "belebele/tgk_Cyrl.jsonl"},
            {"type": "sib200", "path": "sib200/tgk_Cyrl/test.tsv"},
            {"type": "tajlib", "path": "tajlib/test.jsonl"},
            {"type": "talim", "path": "talim/test.jsonl"},
            {"type": "english_mcq", "layout": "mmlu", "path": "english/mmlu.jsonl", "name": "mmlu"},
            {"type": "english_mcq", "layout": "arc", "path": "english/arc.jsonl", "name": "arc"},
            {"type": "translation", "path": "flores200", "source": "tgk_Cyrl", "target": "eng_Latn", "max_tokens": 24},
            {"type": "translation", "path": "flores200", "source": "rus_Cyrl", "target": "tgk_Cyrl", "max_tokens": 24},
            {"type": "bpc", "paths": ["heldout/*.txt"], "max_chars": 300},
            {"type": "tajik_replies", "prompts": prompts, "max_tokens": 24},
            {"type": "sms_budget", "prompts": prompts, "segments": 1, "max_tokens": 24},
            {"type": "latency", "prompts": prompts, "max_tokens": 16, "concurrency": 2},
        ],
    }


def suite_config(data_root: Path, name: str = "suite", *, without: tuple[str, ...] = ()) -> EvalConfig:
    raw = suite_dict(data_root, name)
    raw["tasks"] = [task for task in raw["tasks"] if task["type"] not in without]
    return eval_config_from_dict(raw)


class AnswerKey:
    """What a perfect model replies, found from the raw files, independently of the code under test."""

    def __init__(self, data_root: Path) -> None:
        self.choices: dict[str, str] = {}  # text that identifies the question → the right option's text
        self.translations: dict[str, dict[str, str]] = {}  # target language → source segment → reference
        for row in _jsonl(data_root / "belebele" / "tgk_Cyrl.jsonl"):
            self.choices[row["question"]] = row[f"mc_answer{row['correct_answer_num']}"]
        sib = (data_root / "sib200" / "tgk_Cyrl" / "test.tsv").read_text(encoding="utf-8").splitlines()[1:]
        for line in sib:
            _, category, text = line.split("\t")
            self.choices[text] = SIB200_NAMES[category]
        for row in _jsonl(data_root / "tajlib" / "test.jsonl"):
            self.choices[row["question"]] = row[f"option_{row['answer'].lower()}"]
        for row in _jsonl(data_root / "talim" / "test.jsonl"):
            self.choices[row["question"]] = row["answer"]
        for row in _jsonl(data_root / "english" / "mmlu.jsonl"):
            self.choices[row["question"]] = row["choices"][row["answer"]]
        for row in _jsonl(data_root / "english" / "arc.jsonl"):
            self.choices[row["question"]] = row["choices"]["text"][row["choices"]["label"].index(row["answerKey"])]
        flores = data_root / "flores200" / "devtest"
        lines = {
            code: (flores / f"{code}.devtest").read_text(encoding="utf-8").splitlines()
            for code in ("tgk_Cyrl", "eng_Latn", "rus_Cyrl")
        }
        for target in lines:
            self.translations[target] = {}
            for source in lines:
                if source != target:
                    self.translations[target].update(zip(lines[source], lines[target], strict=True))

    def oracle(self, messages: list[dict[str, str]]) -> str:
        prompt = messages[-1]["content"]
        question = max((q for q in self.choices if q in prompt), key=len, default=None)
        if question is not None:
            right = self.choices[question]
            letters: list[str] = [letter for letter, text in _OPTION_LINE.findall(prompt) if text.strip() == right]
            assert len(letters) == 1, f"the right option {right!r} is not shown exactly once in {prompt!r}"
            return letters[0]
        # A translation prompt names the target language ("ба забони англисӣ") before the source text.
        for name, code in (("англисӣ", "eng_Latn"), ("русӣ", "rus_Cyrl"), ("тоҷикӣ", "tgk_Cyrl")):
            if f"ба забони {name}" in prompt:
                sources = self.translations[code]
                source = max((s for s in sources if s in prompt), key=len, default=None)
                if source is not None:
                    return sources[source]
        return TAJIK_REPLY


@pytest.fixture(scope="session")
def local_model(tiny_model_dir: Path) -> LocalModel:
    from training.eval.backends.local import LocalModel

    return LocalModel(tiny_model_dir, batch_size=8)


@pytest.fixture(scope="session")
async def local_run(local_model: LocalModel, eval_data: Path, tmp_path_factory: pytest.TempPathFactory) -> RunOutcome:
    out_dir = tmp_path_factory.mktemp("local-run")
    return await run_suite(
        suite_config(eval_data, "tiny-local"), local_model, out_dir, system_prompt=TEST_SYSTEM_PROMPT
    )


@pytest.fixture(scope="session")
async def vllm_run(vllm_server: ServedModel, eval_data: Path, tmp_path_factory: pytest.TempPathFactory) -> RunOutcome:
    backend = Endpoint(vllm_server.base_url, model=vllm_server.model, concurrency=8)
    try:
        out_dir = tmp_path_factory.mktemp("vllm-run")
        return await run_suite(suite_config(eval_data, "tiny-vllm"), backend, out_dir, system_prompt=TEST_SYSTEM_PROMPT)
    finally:
        await backend.aclose()


@pytest.fixture(scope="session")
def answer_key(eval_data: Path) -> AnswerKey:
    return AnswerKey(eval_data)
