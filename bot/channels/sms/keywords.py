"""The SMS keywords: start a fresh conversation, or stop all messages (opt out).

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


_WORDS = {
    Keyword.NEW: ("НАВ", "НОВЫЙ", "NEW"),
    Keyword.STOP: ("ИСТ", "СТОП", "STOP"),
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
