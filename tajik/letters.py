"""Letter tables of Tajik Cyrillic and its neighbours."""

from __future__ import annotations

import re

TAJIK_ONLY_LETTERS = frozenset("ғӣқӯҳҷҒӢҚӮҲҶ")

# Old Tajik fonts drew ҳ ҷ ӣ ӯ қ ғ on the code points of Serbian, Ukrainian, Belarusian and Macedonian letters;
# some of them also drew ё on ѐ (e with grave), as in government PDFs of the 2010s.
LEGACY_FONT_MAP = str.maketrans(
    {
        "њ": "ҳ", "Њ": "Ҳ",
        "љ": "ҷ", "Љ": "Ҷ",
        "ї": "ӣ", "Ї": "Ӣ",
        "ў": "ӯ", "Ў": "Ӯ",
        "ќ": "қ", "Ќ": "Қ",
        "ѓ": "ғ", "Ѓ": "Ғ",
        "ѐ": "ё", "Ѐ": "Ё",
    }
)  # fmt: skip
LEGACY_LETTERS = frozenset("њЊљЉїЇўЎќЌѓЃѐЀ")

# What people type when their keyboard has no Tajik layout.
RUSSIAN_KEYBOARD_FALLBACK = str.maketrans("ғӣқӯҳҷҒӢҚӮҲҶ", "гикухчГИКУХЧ")

# Letters of Russian words that native Tajik words never use.
RUSSIAN_ONLY_LETTERS = frozenset("ыщцьЫЩЦЬ")
# Letters that mark Serbian, Macedonian, Ukrainian or Belarusian text, never Tajik.
OTHER_CYRILLIC_LETTERS = frozenset("ђћџјѕєіґЂЋЏЈЅЄІҐ")


_NOT_CYRILLIC = re.compile("[^\u0400-\u04ff]+")


def tajik_letter_share(text: str) -> float:
    """Share of Cyrillic letters in ``text`` that are Tajik-only letters (ғ ӣ қ ӯ ҳ ҷ)."""
    # Counted in C (one regex pass, str.count): the corpus pipeline calls this on every web page.
    cyrillic = len(_NOT_CYRILLIC.sub("", text))
    if not cyrillic:
        return 0.0
    return sum(text.count(letter) for letter in TAJIK_ONLY_LETTERS) / cyrillic
