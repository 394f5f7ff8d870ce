"""SFT data: bad records are dropped and counted by reason, and only the assistant's tokens carry a label."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.training.sft.conftest import write_jsonl
from training.sft.config import SftDataOptions
from training.sft.data import build_sft_data, tokenize_example

pytestmark = pytest.mark.train

GOOD = {
    "instruction": "Пойтахти Тоҷикистон кадом шаҳр аст?",
    "input": "",
    "output": "Пойтахти Тоҷикистон шаҳри Душанбе аст.",
}


def _tokenizer(model_dir: Path):  # type: ignore[no-untyped-def]
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_dir)


def test_validation_counts_every_reason(tiny_model_dir: Path, tmp_path: Path) -> None:
    records: list[object] = [
        GOOD,
        {"instruction": "Наврӯз кай аст?", "input": "Дар Тоҷикистон", "output": "Наврӯз 21 март ҷашн гирифта мешавад."},
        {
            "messages": [
                {"role": "user", "content": "Салом! Ҳолатон чӣ хел?"},
                {"role": "assistant", "content": "Салом, ташаккур, хуб ҳастам."},
            ]
        },
        {
            "instruction": "Пойтахти  Тоҷикистон кадом шаҳр аст?",
            "output": "Пойтахти Тоҷикистон шаҳри Душанбе аст.",
        },  # duplicate
        {"instruction": "Чӣ гуфтан мумкин?", "input": "", "output": "   "},  # empty
        {"instruction": "What is the capital of France?", "output": "Paris is the capital of France."},  # not Tajik
        {"instruction": "Ин ҷо чӣ навишта шудааст?", "output": "Ин матн хеле дароз аст. " * 40},  # too long
        "{not json",  # malformed
        {"prompt": "Салом", "completion": "Салом"},  # malformed: neither shape
        {
            "messages": [{"role": "assistant", "content": "Салом"}, {"role": "assistant", "content": "Салом боз"}]
        },  # no user
    ]
    options = SftDataOptions(
        train=[write_jsonl(tmp_path / "train.jsonl", records)], max_length=200, validation_fraction=0.3
    )
    data = build_sft_data(options, _tokenizer(tiny_model_dir), system_prompt="Ту Соро ҳастӣ.", seed=0)
    report = data.report
    assert (report.read, report.kept) == (10, 3)
    assert (report.duplicate, report.empty, report.not_tajik, report.too_long, report.malformed) == (1, 2, 1, 1, 2)
    assert (report.train, report.validation) == (2, 1)
    assert report.examples["duplicate"] == ["train.jsonl:4"]


def test_labels_cover_assistant_turns_only(tiny_model_dir: Path) -> None:
    tokenizer = _tokenizer(tiny_model_dir)
    messages = [
        {"role": "system", "content": "Ту Соро ҳастӣ."},
        {"role": "user", "content": "Салом!"},
        {"role": "assistant", "content": "Салом, дӯстам."},
        {"role": "user", "content": "Наврӯз кай аст?"},
        {"role": "assistant", "content": "Наврӯз 21 март аст."},
    ]
    example = tokenize_example(tokenizer, messages)
    ids, mask = example["input_ids"], example["assistant_masks"]
    assert ids == tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"]
    learnt = tokenizer.decode([token for token, bit in zip(ids, mask, strict=True) if bit])
    assert learnt == "Салом, дӯстам.<end_of_turn>\nНаврӯз 21 март аст.<end_of_turn>\n"
    ignored = tokenizer.decode([token for token, bit in zip(ids, mask, strict=True) if not bit])
    assert "Ту Соро ҳастӣ." in ignored and "<start_of_turn>model\n" in ignored and "Наврӯз кай аст?" in ignored


def test_service_system_prompt_goes_before_examples_without_one(tiny_model_dir: Path, tmp_path: Path) -> None:
    from soro.settings import Settings

    prompt = Settings().system_prompt
    options = SftDataOptions(train=[write_jsonl(tmp_path / "t.jsonl", [GOOD, GOOD | {"output": "Душанбе."}])])
    tokenizer = _tokenizer(tiny_model_dir)
    data = build_sft_data(options, tokenizer, system_prompt=prompt, seed=0)
    rendered = tokenizer.decode(data.train[0]["input_ids"])
    assert rendered.startswith(f"<bos><start_of_turn>user\n{prompt}\n\n")


@pytest.mark.shared_data
def test_seed_file_validates(tiny_model_dir: Path, seed_instructions: Path) -> None:
    options = SftDataOptions(train=[seed_instructions], max_length=512, validation_fraction=0.1)
    data = build_sft_data(options, _tokenizer(tiny_model_dir), system_prompt="", seed=0)
    report = data.report
    assert report.read == 65 and report.malformed == report.empty == report.duplicate == 0
    # Every seed example is genuine Tajik, the short ones without a Tajik-only letter too (line 54:
    # "Антоними калимаи «калон» чист?" / "Хурд, майда, ночиз."), so none is dropped as not Tajik.
    assert report.not_tajik == 0, report.examples.get("not_tajik")
    assert report.kept == 65 and report.train + report.validation == report.kept
