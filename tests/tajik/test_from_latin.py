"""Tajik in Latin letters back to Cyrillic: the informal spellings, the 1928–40 letters, and to_latin's own."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tajik import default_lexicon, from_latin, to_latin
from tajik.lexicon import WORD


def test_everyday_latin_spellings() -> None:
    assert from_latin("Salom, chi hel?") == "Салом, чӣ хел?"
    assert from_latin("Man imruz ba maktab naraftam") == "Ман имрӯз ба мактаб нарафтам"
    assert from_latin("Rahmat, dustam!") == "Раҳмат, дӯстам!"
    assert from_latin("Javobi durust kadom ast?") == "Ҷавоби дуруст кадом аст?"


def test_other_spellings_of_the_same_letters() -> None:
    assert from_latin("Khujand") == from_latin("Xujand") == "Хуҷанд"
    assert from_latin("g'am") == from_latin("gham") == "ғам"
    assert from_latin("she'r") == "шеър"


def test_letters_of_the_official_latin_alphabet_of_the_1930s() -> None:
    assert from_latin("Toçikiston") == "Тоҷикистон"
    assert from_latin("şahr") == "шаҳр"
    assert from_latin("ƣam") == "ғам"
    assert from_latin("Rūdakī") == "Рӯдакӣ"
    assert from_latin("cor") == "чор"


def test_unknown_words_are_spelled_letter_by_letter() -> None:
    assert from_latin("Zirkuvlak") == "Зиркувлак"
    assert from_latin("shachkhoyo") == "шачхоё"
    assert from_latin("ekrani") == "экрани"


def test_case_numbers_and_roman_numerals_are_kept() -> None:
    assert from_latin("TOJIKISTON") == "ТОҶИКИСТОН"
    assert from_latin(to_latin("ЮНЕСКО")) == "ЮНЕСКО"  # to_latin wrote "YuNESKO"
    assert from_latin("Asri XXI, soli 2024") == "Асри XXI, соли 2024"


@given(st.lists(st.sampled_from(sorted(form for forms in default_lexicon().by_key.values() for form in forms))))
def test_from_latin_undoes_to_latin_for_every_form_its_latin_spelling_names_alone(words: list[str]) -> None:
    lexicon = default_lexicon()
    unambiguous = [w for w in words if len(lexicon.latin_forms(to_latin(w)) or {}) == 1]
    text = " ".join(unambiguous)
    assert from_latin(to_latin(text)) == text


@pytest.fixture(scope="module")
def prose_lines(shared_data: Path) -> list[str]:
    return [
        line
        for path in sorted((shared_data / "prose").glob("*.txt"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]


@pytest.mark.shared_data
@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_on_the_prose_from_latin_undoes_to_latin_but_for_forms_that_share_a_latin_spelling(
    prose_lines: list[str], data: st.DataObject
) -> None:
    line = data.draw(st.sampled_from(prose_lines))
    lexicon = default_lexicon()
    for word, back in zip(WORD.findall(line), WORD.findall(from_latin(to_latin(line))), strict=True):
        # "давлати" and "давлатӣ" are both "davlati": only the next word can tell them apart, and not always.
        assert back == word or len(lexicon.latin_forms(to_latin(word).lower()) or {}) > 1, (word, back)


@pytest.mark.shared_data
def test_from_latin_undoes_to_latin_on_the_prose(shared_data: Path) -> None:
    """to_latin merges и/ӣ, у/ӯ, е/э; the lexicon and the next word take back nearly all of it."""
    total = right = 0
    for path in sorted((shared_data / "prose").glob("*.txt")):
        for line in path.read_text(encoding="utf-8").splitlines():
            back = from_latin(to_latin(line))
            words, again = WORD.findall(line), WORD.findall(back)
            assert len(words) == len(again), line
            total += len(words)
            right += sum(a == b for a, b in zip(words, again, strict=True))
    assert total > 40_000
    assert right / total >= 0.99, f"{right / total:.4f} of words come back"
