"""`soro data export-sft` on a database seeded through the real pipeline (SQLite, Redis): what is kept, what is
dropped and why, and that `soro train sft` trains on the file and TRL's DPO trainer takes the pairs."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from bot.services import Services
from bot.store.models import Vote
from soro.cli import app
from tests.support.conversations import answered
from tests.support.stack import stack_settings

GOOD = [
    ("Пойтахти Тоҷикистон кадом шаҳр аст?", "Пойтахти Ҷумҳурии Тоҷикистон шаҳри Душанбе мебошад."),
    (
        "Дар Тоҷикистон чанд вилоят ҳаст?",
        "Дар Тоҷикистон ду вилоят, як вилояти мухтор ва ноҳияҳои тобеи ҷумҳурӣ ҳастанд.",
    ),
    ("Кӯли Искандаркӯл дар куҷо ҷойгир аст?", "Искандаркӯл дар кӯҳҳои Фон, дар вилояти Суғд ҷойгир шудааст."),
    ("Рӯдаки кӣ буд?", "Абӯабдуллоҳи Рӯдакӣ асосгузори адабиёти форсу тоҷик ва шоири бузург буд."),
    ("Барои чӣ китоб хондан муфид аст?", "Китоб хондан дониш, забон ва тафаккури шуморо бой мегардонад."),
    ("Обу ҳавои Помир чӣ гуна аст?", "Обу ҳавои Помир сард ва хушк аст, зимистонҳояш дароз ва сахт мебошанд."),
]
PHONE = "+992 93 123 45 67"
BAD_QUESTION = "Қуллаи баландтарини Тоҷикистон кадом аст?"
BAD_ANSWER = "Қуллаи баландтарин Ҳисор аст ва баландиаш сад метр мебошад."
CHOSEN = "Қуллаи баландтарини Тоҷикистон қуллаи Исмоили Сомонӣ бо баландии 7495 метр аст."
EVAL_SENTENCE = "Дарёи Вахш яке аз дарёҳои калонтарини ҷумҳурӣ буда ба Амударё мерезад ва об медиҳад"


@pytest.fixture
async def seeded(sqlite_url: str, redis_url: str) -> AsyncIterator[str]:
    services = Services.create(stack_settings(sqlite_url, redis_url, "http://127.0.0.1:9/v1", "soro"))
    rate = services.pipeline.feedback.rate
    for i, (question, answer) in enumerate(GOOD):
        if i == 0:
            question = f"{question} Рақами ман {PHONE}, ба ман занг занед."
        await rate(await answered(services, "telegram", str(7000 + i), f"g-{i}", question, answer), Vote.UP, "u")
    # A 👎 answer, and elsewhere a 👍 answer to the same question: a preference pair.
    await rate(await answered(services, "telegram", "7100", "b-1", BAD_QUESTION, BAD_ANSWER), Vote.DOWN, "u")
    await rate(await answered(services, "telegram", "7101", "b-2", BAD_QUESTION, CHOSEN), Vote.UP, "u")
    # A 👎 answer nobody answered better: unpaired.
    await rate(
        await answered(services, "sms", "+992900000001", "b-3", "Хуҷанд дар куҷост?", "Хуҷанд дар Помир ҷойгир аст."),
        Vote.DOWN,
        "u",
    )
    # Left out: a forgotten user, a blocked one, Russian, unrated, and an answer quoting an evaluation set.
    forgotten = "Номи ман Фарҳод аст ва ман дар Кӯлоб зиндагӣ мекунам, ёд гир."
    await rate(await answered(services, "telegram", "7200", "f-1", forgotten, "Хуб, Фарҳод ҷон."), Vote.UP, "u")
    await services.pipeline.forget("telegram", "7200")
    blocked = "Ин паёми корбари манъшуда аст, ки набояд дар омӯзиш бошад."
    await rate(await answered(services, "telegram", "7300", "x-1", blocked, "Ҳа, фаҳмидам."), Vote.UP, "u")
    await services.pipeline.access.set_rule("telegram", "7300", "blocked", True)
    russian = ("Какая столица Таджикистана?", "Столица Таджикистана — город Душанбе, он стоит на реке Варзоб.")
    await rate(await answered(services, "telegram", "7400", "r-1", *russian), Vote.UP, "u")
    await answered(services, "telegram", "7500", "n-1", "Салом, ҳолатон чӣ хел?", "Ташаккур, хуб ҳастам, шумо чӣ?")
    contaminated = ("Дар бораи дарёи Вахш нақл кунед.", f"{EVAL_SENTENCE}, ки барои кишоварзӣ муҳим аст.")
    await rate(await answered(services, "telegram", "7600", "c-1", *contaminated), Vote.UP, "u")
    keys = [key async for key in services.redis.scan_iter(f"{services.settings.stream_prefix}:*")]
    if keys:
        await services.redis.delete(*keys)
    await services.close()
    yield sqlite_url


def curation_config(tmp_path: Path) -> Path:
    eval_set = tmp_path / "flores.jsonl"
    eval_set.write_text(json.dumps({"text": EVAL_SENTENCE + "."}, ensure_ascii=False) + "\n", encoding="utf-8")
    config = {
        "output_dir": str(tmp_path / "curated"),
        "sources": [{"name": "web", "kind": "jsonl", "path": str(tmp_path)}],
        "decontamination": {"eval_sets": [{"name": "flores", "path": str(eval_set)}]},
    }
    path = tmp_path / "curation.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def run_export(database_url: str, tmp_path: Path, *extra: str) -> tuple[Path, Path, str]:
    out, pairs = tmp_path / "sft.jsonl", tmp_path / "pairs.jsonl"
    result = CliRunner().invoke(
        app,
        [
            "data",
            "export-sft",
            str(out),
            "--preferences",
            str(pairs),
            "--config",
            str(curation_config(tmp_path)),
            *extra,
        ],
        env={"SORO_DATABASE_URL": database_url},
    )
    assert result.exit_code == 0, result.output
    return out, pairs, result.output


@pytest.mark.train
def test_export_keeps_liked_tajik_conversations_scrubbed_and_writes_pairs(seeded: str, tmp_path: Path) -> None:
    out, pairs, output = run_export(seeded, tmp_path)
    examples = read_jsonl(out)
    text = json.dumps(examples, ensure_ascii=False)
    assert len(examples) == len(GOOD) + 1  # the six, and the 👍 answer to the 👎'd question
    assert all([m["role"] for m in e["messages"]] == ["user", "assistant"] for e in examples)  # type: ignore[index]
    assert PHONE not in text and "+992 00 000 00 00" in text  # the curation PII step's fake number
    for absent in (BAD_ANSWER, "Фарҳод", "манъшуда", "Столица", "ҳолатон", "Вахш", "Помир ҷойгир"):
        assert absent not in text, absent
    report = json.loads((tmp_path / "sft.report.json").read_text(encoding="utf-8"))
    assert report["dropped_answers"] == {"thumbs_down": 2, "unrated": 1, "blocked": 1}
    assert report["dropped_examples"] == {"not_tajik": 1, "contaminated": 1}
    assert report["pii_scrubbed"] == 1 and report["decontaminated_against"] == ["flores"]
    assert "7 examples" in output

    [pair] = read_jsonl(pairs)
    assert pair["prompt"] == [{"role": "user", "content": BAD_QUESTION}]
    assert pair["rejected"] == [{"role": "assistant", "content": BAD_ANSWER}]
    assert pair["chosen"] == [{"role": "assistant", "content": CHOSEN}]
    [unpaired] = read_jsonl(tmp_path / "pairs.unpaired.jsonl")
    assert unpaired["label"] is False and "Помир" in json.dumps(unpaired, ensure_ascii=False)

    # Unrated answers on request; 👎 ones never.
    out, _, _ = run_export(seeded, tmp_path, "--include-unrated")
    text = out.read_text(encoding="utf-8")
    assert "ҳолатон" in text and BAD_ANSWER not in text


def test_a_missing_evaluation_set_stops_the_export(tmp_path: Path) -> None:
    config = curation_config(tmp_path)
    (tmp_path / "flores.jsonl").unlink()
    result = CliRunner().invoke(
        app,
        ["data", "export-sft", str(tmp_path / "out.jsonl"), "--config", str(config)],
        env={"SORO_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'none.db'}"},
    )
    assert result.exit_code == 2 and "flores" in result.output
    assert not (tmp_path / "out.jsonl").exists()


@pytest.mark.train
def test_soro_train_sft_trains_on_the_export_and_trl_takes_the_pairs(
    seeded: str, tmp_path: Path, tiny_model_dir: Path
) -> None:
    out, pairs, _ = run_export(seeded, tmp_path)
    config = {
        "output_dir": str(tmp_path / "run"),
        "model": {"name_or_path": str(tiny_model_dir), "precision": "32-true", "gradient_checkpointing": False},
        "data": {"train": [str(out)], "max_length": 256, "validation_fraction": 0.3},
        "train": {"max_steps": 2, "per_device_batch_size": 2, "logging_steps": 1, "eval_steps": 2, "save_steps": 2},
    }
    config_path = tmp_path / "sft.yaml"
    config_path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    result = CliRunner().invoke(app, ["train", "sft", str(config_path)])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "run" / "data_report.json").read_text(encoding="utf-8"))
    assert report["kept"] == 7 and report["malformed"] == report["not_tajik"] == 0
    assert (tmp_path / "run" / "final" / "model.safetensors").is_file()

    from datasets import load_dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    dataset = load_dataset("json", data_files=str(pairs), split="train")
    assert set(dataset.column_names) == {"prompt", "chosen", "rejected"}
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    trainer = DPOTrainer(
        model=AutoModelForCausalLM.from_pretrained(tiny_model_dir),
        args=DPOConfig(
            output_dir=str(tmp_path / "dpo"),
            max_steps=1,
            per_device_train_batch_size=1,
            report_to=[],
            activation_checkpointing=False,
            bf16=False,
            use_cpu=True,
        ),
        train_dataset=dataset,
        processing_class=tokenizer,
    )
    assert trainer.train().global_step == 1
