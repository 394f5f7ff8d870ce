"""Which script a message is written in: Cyrillic, Latin, both, or neither."""

from __future__ import annotations

import enum


class Script(enum.StrEnum):
    CYRILLIC = "cyrillic"
    LATIN = "latin"
    MIXED = "mixed"  # Cyrillic and Latin letters both carry the text
    OTHER = "other"  # no letters of either: digits, emoji, Arabic script


# A stray brand or Latin abbreviation in a Cyrillic message ("Ман дар Google ёфтам") does not make it mixed.
_MINOR_SHARE = 0.2


def _is_cyrillic(ch: str) -> bool:
    return "\u0400" <= ch <= "\u04ff" or "\u0500" <= ch <= "\u052f"


def _is_latin(ch: str) -> bool:
    return ("a" <= ch <= "z") or ("A" <= ch <= "Z") or ("\u00c0" <= ch <= "\u024f" and ch not in "×÷")


def letter_counts(text: str) -> tuple[int, int, int]:
    """Cyrillic, Latin and other letters in ``text``."""
    cyrillic = latin = other = 0
    for ch in text:
        if _is_cyrillic(ch):
            cyrillic += 1
        elif _is_latin(ch):
            latin += 1
        elif ch.isalpha():
            other += 1
    return cyrillic, latin, other


def script_of(text: str) -> Script:
    """The script of ``text``, judged by its letters: Latin and Cyrillic each a fifth of them or more is mixed."""
    cyrillic, latin, other = letter_counts(text)
    letters = cyrillic + latin
    if not letters or other > letters:
        return Script.OTHER
    if latin <= _MINOR_SHARE * letters:
        return Script.CYRILLIC
    if cyrillic <= _MINOR_SHARE * letters:
        return Script.LATIN
    return Script.MIXED
