"""The Tajik word splitter gives the words FineWeb-2's tgk_Cyrl thresholds were computed on (spaCy "xx")."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from training.data.words import TajikWordTokenizer


def test_splits_like_spacy_on_tricky_tajik() -> None:
    words = TajikWordTokenizer().word_tokenize("ш.Душанбе аз 29.09.2017 № 443, иттилоотӣ-коммуникатсионӣ 12,5% т.д.")
    assert words == [
        "ш", ".", "Душанбе", "аз", "29.09.2017", "№", "443", ",",
        "иттилоотӣ-коммуникатсионӣ", "12,5", "%", "т.д", ".",
    ]  # fmt: skip


def test_sentences() -> None:
    text = "Салом! Шумо чӣ хел? Ман хуб.\nНави сатр"
    assert TajikWordTokenizer().sent_tokenize(text) == ["Салом!", "Шумо чӣ хел?", "Ман хуб.", "Нави сатр"]
    assert [text[a:b] for a, b in TajikWordTokenizer().span_tokenize(text)] == [
        "Салом!",
        "Шумо чӣ хел?",
        "Ман хуб.",
        "Нави сатр",
    ]


@pytest.mark.shared_data
def test_agrees_with_spacy_xx_on_real_prose(shared_data: Path) -> None:
    from datatrove.utils.word_tokenizers import load_word_tokenizer

    spacy_xx = load_word_tokenizer("tgk_Cyrl")
    ours = TajikWordTokenizer()
    text = (shared_data / "prose" / "Payom_MajlisiOli_26_12_2018.txt").read_text(encoding="utf-8")
    theirs_words, our_words = Counter(spacy_xx.word_tokenize(text)), Counter(ours.word_tokenize(text))
    shared = sum((theirs_words & our_words).values())
    assert shared / max(theirs_words.total(), our_words.total()) >= 0.99
