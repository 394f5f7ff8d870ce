"""Offline language ID on the Universal Declaration in six languages, paragraph by paragraph."""

from __future__ import annotations

from pathlib import Path

import pytest

from tajik.letters import RUSSIAN_KEYBOARD_FALLBACK
from training.data.config import LanguageOptions
from training.data.langid import identify

DEFAULTS = LanguageOptions()


def _is_tajik(text: str) -> bool:
    guess = identify(
        text,
        threshold=DEFAULTS.threshold,
        letter_share_for_full_score=DEFAULTS.letter_share_for_full_score,
        max_chars=DEFAULTS.max_chars,
    )
    return guess.language == "tg"


def _paragraphs(shared_data: Path, lang: str) -> list[str]:
    """Paragraphs of at least four words; the rest are headings like "Моддаи 3." that no model can place."""
    lines = (shared_data / "langid" / f"udhr_{lang}.txt").read_text(encoding="utf-8").splitlines()
    return [line for line in lines if len(line.split()) >= 4]


@pytest.mark.shared_data
def test_every_tajik_paragraph_is_kept_even_typed_on_a_russian_keyboard(shared_data: Path) -> None:
    paragraphs = _paragraphs(shared_data, "tg")
    assert len(paragraphs) > 50
    assert all(_is_tajik(p) for p in paragraphs)
    fallback = [p.translate(RUSSIAN_KEYBOARD_FALLBACK) for p in paragraphs]
    assert all(_is_tajik(p) for p in fallback)


@pytest.mark.shared_data
@pytest.mark.parametrize("lang", ["ru", "uz_Cyrl", "uz_Latn", "fa", "en"])
def test_no_paragraph_of_another_language_is_taken_for_tajik(shared_data: Path, lang: str) -> None:
    paragraphs = _paragraphs(shared_data, lang)
    assert len(paragraphs) > 50
    assert [p for p in paragraphs if _is_tajik(p)] == []


def test_uzbek_letters_shared_with_tajik_do_not_count_for_tajik() -> None:
    # қ ғ ҳ are Uzbek letters too: this sentence is 15 % "Tajik-only" letters and still Uzbek.
    assert not _is_tajik("Ҳар бир инсоннинг фуқаролик ҳуқуқи бор.")
    assert _is_tajik("Ҳар як инсон ба шаҳрвандӣ ҳақ дорад.")


def test_score_and_model_guess_are_recorded() -> None:
    guess = identify(
        "Это русский текст о правах человека и основных свободах.",
        threshold=0.766,
        letter_share_for_full_score=0.04,
        max_chars=8000,
    )
    assert guess.language == "ru" and guess.model_language == "ru"
    assert guess.score < 0.1 and guess.tajik_letter_share == 0.0
