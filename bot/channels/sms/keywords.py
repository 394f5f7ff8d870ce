"""The SMS keywords: start a fresh conversation, stop all messages (opt out), forget me, rate the last answer.

``1``/``ХА`` (yes) rates the last answer 👍 and ``2``/``НЕ`` (no) 👎, but only right after an answer: otherwise
they are ordinary messages. ``ФАРОМӮШ``/``FORGET`` deletes everything stored about the number, as ``/forget``.

A keyword is the whole message, matched case-insensitively after normalisation and with Latin letters that look
Cyrillic read as Cyrillic: phones without a Cyrillic keyboard send "HAB" for "НАВ" and "CTOП" for "СТОП".
"""

from __future__ import annotations

import enum
import string

from tajik import normalize


class Keyword(enum.Enum):
    NEW = "new"  # also the way back in after STOP
    STOP = "stop"
    FORGET = "forget"
    GOOD = "good"  # 👍 on the last answer
    BAD = "bad"  # 👎 on the last answer

    @property
    def rates(self) -> bool:
        return self in (Keyword.GOOD, Keyword.BAD)


_WORDS = {
    Keyword.NEW: ("НАВ", "НОВЫЙ", "NEW"),
    Keyword.STOP: ("ИСТ", "СТОП", "STOP"),
    # Phones without ӯ send "ФАРОМУШ".
    Keyword.FORGET: ("ФАРОМӮШ", "ФАРОМУШ", "FORGET"),
    Keyword.GOOD: ("1", "ХА", "ҲА", "ДА", "YES", "👍"),
    Keyword.BAD: ("2", "НЕ", "НЕТ", "NO", "👎"),
}
# After casefolding: Latin letters whose capitals look Cyrillic ("B" → "в", "H" → "н", "P" → "р", …).
_LOOKALIKES = str.maketrans("abcehkmoptxy", "авсенкмортху")
_EDGES = string.punctuation + "«»“”„…!¡?¿.。 \t\n"


def _fold(text: str) -> str:
    return normalize(text).strip(_EDGES).casefold().translate(_LOOKALIKES)


_INDEX = {_fold(word): keyword for keyword, words in _WORDS.items() for word in words}


def match_keyword(text: str) -> Keyword | None:
    if len(text) > 24:  # a keyword is one short word; longer texts are questions
        return None
    return _INDEX.get(_fold(text))
