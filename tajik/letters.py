"""Letter tables of Tajik Cyrillic and its neighbours."""

from __future__ import annotations

TAJIK_ONLY_LETTERS = frozenset("ғӣқӯҳҷҒӢҚӮҲҶ")

# Old Tajik fonts drew ҳ ҷ ӣ ӯ қ ғ on the code points of Serbian, Ukrainian, Belarusian and Macedonian letters.
LEGACY_FONT_MAP = str.maketrans(
    {
        "њ": "ҳ", "Њ": "Ҳ",
        "љ": "ҷ", "Љ": "Ҷ",
        "ї": "ӣ", "Ї": "Ӣ",
        "ў": "ӯ", "Ў": "Ӯ",
        "ќ": "қ", "Ќ": "Қ",
        "ѓ": "ғ", "Ѓ": "Ғ",
    }
)  # fmt: skip
LEGACY_LETTERS = frozenset("њЊљЉїЇўЎќЌѓЃ")

# What people type when their keyboard has no Tajik layout.
RUSSIAN_KEYBOARD_FALLBACK = str.maketrans("ғӣқӯҳҷҒӢҚӮҲҶ", "гикухчГИКУХЧ")

# Letters of Russian words that native Tajik words never use.
RUSSIAN_ONLY_LETTERS = frozenset("ыщцьЫЩЦЬ")
# Letters that mark Serbian, Macedonian, Ukrainian or Belarusian text, never Tajik.
OTHER_CYRILLIC_LETTERS = frozenset("ђћџјѕєіґЂЋЏЈЅЄІҐ")


def tajik_letter_share(text: str) -> float:
    """Share of Cyrillic letters in ``text`` that are Tajik-only letters (ғ ӣ қ ӯ ҳ ҷ)."""
    cyrillic = [ch for ch in text if "\u0400" <= ch <= "\u04ff"]
    if not cyrillic:
        return 0.0
    return sum(ch in TAJIK_ONLY_LETTERS for ch in cyrillic) / len(cyrillic)
