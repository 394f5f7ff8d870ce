"""Multiple-choice items: one shape for every MCQ benchmark, their answer keys, and reading a model's reply.

A local model is scored by comparing the log-likelihoods of the option letters after the prompt (as
lm-evaluation-harness does); an endpoint is scored by asking it to reply with the letter and reading the
letter back. Both see the same prompt, so the two ways differ only in how the choice is read.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from training.eval.records import DatasetError

LETTERS = "ABCDEFGHIJ"
# Tajik (and Russian) exam papers letter their options А Б В Г Д.
CYRILLIC_LETTERS = "АБВГДЕЖЗИК"
# Cyrillic capitals that look like the Latin letters we show; a model may answer with either glyph.
_HOMOGLYPHS = str.maketrans("АВСЕН", "ABCEH")
_STANDALONE_LETTER = re.compile(r"(?<!\w)([A-J])(?!\w)")
_PUNCTUATION = " \t\n.,:;!?()[]*\"'«»"

TAJIK_ANSWER_CUE = "Ҷавоб:"
ENGLISH_ANSWER_CUE = "Answer:"


@dataclass(frozen=True)
class ChoiceItem:
    """One question: the prompt (ending with the answer cue), its options and the index of the right one."""

    id: str
    prompt: str
    options: tuple[str, ...]
    answer: int
    group: str | None = None  # subject or section, for a per-group breakdown

    def __post_init__(self) -> None:
        if not 2 <= len(self.options) <= len(LETTERS):
            raise DatasetError(f"item {self.id}: needs 2 to {len(LETTERS)} options, has {len(self.options)}")
        if not 0 <= self.answer < len(self.options):
            raise DatasetError(f"item {self.id}: answer index {self.answer} is out of range")

    @property
    def letters(self) -> tuple[str, ...]:
        return tuple(LETTERS[: len(self.options)])


def lettered_options(options: Sequence[str], separator: str = ". ") -> str:
    return "\n".join(f"{letter}{separator}{option}" for letter, option in zip(LETTERS, options, strict=False))


def letters_phrase(count: int, conjunction: str) -> str:
    """``A, B, C ё D`` for four options in Tajik (``or`` in English)."""
    letters = list(LETTERS[:count])
    return f"{', '.join(letters[:-1])} {conjunction} {letters[-1]}"


def resolve_answer(value: object, options: Sequence[str], *, numbers_from: int, where: str) -> int:
    """The 0-based index of an answer key given as the option's text, a Latin or Cyrillic letter, or a number.

    ``numbers_from`` says how the dataset counts: 0 for MMLU's ``answer``, 1 for Belebele's
    ``correct_answer_num``.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        index = value - numbers_from
    else:
        text = str(value).strip()
        # An option's own text wins: exam answers like "15" are often the text of a numeric option.
        matches = [i for i, option in enumerate(options) if option.strip().casefold() == text.casefold()]
        key = text.strip(".)").upper()
        if len(matches) == 1:
            index = matches[0]
        elif len(key) == 1 and key in LETTERS:
            index = LETTERS.index(key)
        elif len(key) == 1 and key in CYRILLIC_LETTERS:
            index = CYRILLIC_LETTERS.index(key)
        elif key.isdigit():
            index = int(key) - numbers_from
        else:
            raise DatasetError(f"{where}: answer {value!r} is neither one of the options, a letter nor a number")
    if not 0 <= index < len(options):
        raise DatasetError(f"{where}: answer {value!r} points outside the {len(options)} options")
    return index


def parse_reply(reply: str, options: Sequence[str]) -> int | None:
    """Which option a generated reply picks, or None when it picks none.

    A bare letter wins, then the first letter standing alone ("B.", "(C)", "Ҷавоб: D"), then an option's text
    quoted in the reply, if exactly one option's text is.
    """
    letters = LETTERS[: len(options)]
    text = reply.translate(_HOMOGLYPHS)
    bare = text.strip(_PUNCTUATION)
    if len(bare) == 1 and bare in letters:
        return letters.index(bare)
    for match in _STANDALONE_LETTER.finditer(text):
        if match.group(1) in letters:
            return letters.index(match.group(1))
    folded = reply.casefold()
    quoted = [i for i, option in enumerate(options) if option.strip() and option.strip().casefold() in folded]
    return quoted[0] if len(quoted) == 1 else None
