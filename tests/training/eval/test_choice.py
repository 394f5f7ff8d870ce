"""Answer keys in every form the datasets use, and reading the letter out of a model's reply."""

from __future__ import annotations

import pytest

from training.eval.choice import parse_reply, resolve_answer
from training.eval.records import DatasetError

OPTIONS = ("Хуҷанд", "Душанбе", "Кӯлоб", "Бохтар")


@pytest.mark.parametrize(
    ("key", "numbers_from", "expected"),
    [
        ("B", 1, 1),
        ("b", 1, 1),
        ("C)", 1, 2),
        ("Б", 1, 1),  # Tajik exam papers letter options А Б В Г
        ("В", 1, 2),
        ("Душанбе", 1, 1),
        (" душанбе ", 1, 1),
        (2, 1, 1),  # Belebele's correct_answer_num counts from 1
        ("2", 1, 1),
        (1, 0, 1),  # MMLU's answer counts from 0
    ],
)
def test_answer_keys_resolve_to_the_same_option(key: object, numbers_from: int, expected: int) -> None:
    assert resolve_answer(key, OPTIONS, numbers_from=numbers_from, where="row 0") == expected


def test_an_answer_that_is_an_options_text_wins_over_reading_it_as_a_number() -> None:
    assert resolve_answer("15", ("13", "14", "16", "15"), numbers_from=1, where="row 3") == 3


@pytest.mark.parametrize("key", ["E", "Самарқанд", 7])
def test_an_answer_outside_the_options_names_the_row(key: object) -> None:
    with pytest.raises(DatasetError, match="row 5"):
        resolve_answer(key, OPTIONS, numbers_from=1, where="row 5")


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("B", 1),
        ("B.", 1),
        (" (C) ", 2),
        ("Ҷавоб: D", 3),
        ("**A**", 0),
        ("В", 1),  # a Cyrillic В that looks like the Latin B we showed
        ("Ҷавоби дуруст: B. Душанбе", 1),
        ("Пойтахт Душанбе аст.", 1),  # no letter, but exactly one option's text
    ],
)
def test_replies_are_read_as_the_option_they_pick(reply: str, expected: int) -> None:
    assert parse_reply(reply, OPTIONS) == expected


@pytest.mark.parametrize("reply", ["", "Намедонам.", "E", "Хуҷанд ё Душанбе", "Ҷавоб: F"])
def test_replies_that_pick_no_single_option_pick_nothing(reply: str) -> None:
    assert parse_reply(reply, OPTIONS) is None
