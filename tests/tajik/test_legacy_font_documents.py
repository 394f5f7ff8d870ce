"""Legacy-font repair on whole documents: the PDFs of the training corpus, including bilingual ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from tajik import repair_legacy_font
from tajik.letters import LEGACY_FONT_MAP, LEGACY_LETTERS

# The inverse of the repair: what an old Tajik font put in a PDF's text layer.
_TO_LEGACY = str.maketrans({repaired: legacy for legacy, repaired in LEGACY_FONT_MAP.items()})


def _expected_text(shared_data: Path, name: str) -> str:
    lines = (shared_data / "pdf" / name).read_text(encoding="utf-8").splitlines()
    return "\n".join(line for line in lines if not line.startswith("=== "))


def test_chat_messages_keep_their_behaviour() -> None:
    assert repair_legacy_font("Салом, њамаи шумо чї хел?") == "Салом, ҳамаи шумо чӣ хел?"
    assert repair_legacy_font("Његово име је Марко") == "Његово име је Марко"


@pytest.mark.shared_data
def test_tajik_document_in_legacy_font_is_repaired(shared_data: Path) -> None:
    tajik = _expected_text(shared_data, "shohnoma_excerpt_expected.txt")
    legacy = tajik.translate(_TO_LEGACY)
    assert legacy != tajik
    assert repair_legacy_font(legacy) == tajik


@pytest.mark.shared_data
def test_bilingual_tajik_russian_document_gets_its_tajik_half_repaired(shared_data: Path) -> None:
    tajik = _expected_text(shared_data, "shohnoma_excerpt_expected.txt")
    russian = (shared_data / "langid" / "udhr_ru.txt").read_text(encoding="utf-8")[: len(tajik)]
    document = tajik.translate(_TO_LEGACY) + "\n\n" + russian

    repaired = repair_legacy_font(document)

    assert repaired == tajik + "\n\n" + russian
    assert not any(ch in LEGACY_LETTERS for ch in repaired)


@pytest.mark.shared_data
def test_uzbek_document_keeps_its_letters(shared_data: Path) -> None:
    uzbek = (shared_data / "langid" / "udhr_uz_Cyrl.txt").read_text(encoding="utf-8")
    russian = (shared_data / "langid" / "udhr_ru.txt").read_text(encoding="utf-8")
    assert "ў" in uzbek
    assert repair_legacy_font(uzbek) == uzbek
    assert repair_legacy_font(uzbek + "\n" + russian) == uzbek + "\n" + russian


@pytest.mark.shared_data
def test_russian_document_naming_an_uzbek_place_is_left_alone(shared_data: Path) -> None:
    russian = (shared_data / "langid" / "udhr_ru.txt").read_text(encoding="utf-8")
    text = russian + "\nВстреча прошла в городе Ўрикзор."
    assert repair_legacy_font(text) == text
