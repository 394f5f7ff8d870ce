"""Reading parallel text and held-out text: the UDHR in place, FLORES-style folders, passages for bits/char."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.eval.config import TranslationTask
from training.eval.records import DatasetError
from training.eval.tasks.bpc import passages_of
from training.eval.tasks.translation import load_segments

UDHR_FIELDS = TranslationTask(path=Path("x"), source="tgk_Cyrl", target="eng_Latn").fields


@pytest.mark.shared_data
def test_the_udhr_multiway_file_is_read_in_place(shared_data: Path) -> None:
    path = shared_data / "parallel" / "udhr_multiway.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    segments = load_segments(path, "tgk_Cyrl", "rus_Cyrl", split="devtest", fields=UDHR_FIELDS)
    assert len(segments) == sum(bool(row.get("tg")) and bool(row.get("ru")) for row in rows) == 51
    article_1 = next(segment for segment in segments if segment.id == "udhr-art01-p1")
    assert article_1.source.startswith("Тамоми одамон озод")
    assert article_1.reference.startswith("Все люди рождаются свободными")


def test_a_flores_folder_pairs_lines_of_the_two_languages(tmp_path: Path) -> None:
    devtest = tmp_path / "devtest"
    devtest.mkdir()
    (devtest / "tgk_Cyrl.devtest").write_text("Салом.\nРаҳмат.\n", encoding="utf-8")
    (devtest / "eng_Latn.devtest").write_text("Hello.\nThank you.\n", encoding="utf-8")
    segments = load_segments(tmp_path, "eng_Latn", "tgk_Cyrl", split="devtest", fields={})
    assert [(s.source, s.reference) for s in segments] == [("Hello.", "Салом."), ("Thank you.", "Раҳмат.")]
    (devtest / "rus_Cyrl.devtest").write_text("Привет.\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="rus_Cyrl has 1 lines but tgk_Cyrl has 2"):
        load_segments(tmp_path, "rus_Cyrl", "tgk_Cyrl", split="devtest", fields={})


def test_passages_keep_every_line_and_stay_within_their_size() -> None:
    lines = [f"Ҷумлаи {i}: " + "калима " * (i % 7 + 1) for i in range(40)]
    long_line = "дароз " * 100
    text = "\n".join([*lines[:20], "", long_line, *lines[20:]])
    passages = passages_of("doc.txt", text, max_chars=120)
    assert all(len(p.text) <= 120 for p in passages)
    assert " ".join(" ".join(p.text.split()) for p in passages) == " ".join(text.split())
    assert [p.id for p in passages[:2]] == ["doc.txt:0", "doc.txt:1"]
