"""Normalisation of incoming Tajik text, including per-document legacy-font repair."""

from __future__ import annotations

import re
import unicodedata

from tajik.letters import (
    LEGACY_FONT_MAP,
    LEGACY_LETTERS,
    OTHER_CYRILLIC_LETTERS,
    RUSSIAN_KEYBOARD_FALLBACK,
    RUSSIAN_ONLY_LETTERS,
)

# Frequent Tajik function words (FineWeb-2 tgk_Cyrl stop words and a few more), written both properly and as
# typed on a Russian keyboard. "ва", shared with Uzbek, is left out so Uzbek text does not pass for Tajik.
_TAJIK_WORDS = frozenset(
    "дар аз ба ки аст соли бо деҳа дорад ин он барои мебошад мешавад шуда карда буд ҳам низ ё "
    "чӣ чаро кадом ман ту мо шумо онҳо ӯ бояд шавад намояд дорам ҳастам ҳаст нест салом раҳмат лутфан хуб бисёр".split()
)
_TAJIK_WORDS = _TAJIK_WORDS | {w.translate(RUSSIAN_KEYBOARD_FALLBACK) for w in _TAJIK_WORDS}
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200b\u202f\u205f\u3000]+")
_CONTROL = re.compile(r"[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f\u200e\u200f\ufeff\ufffe]")
_BLANK_LINES = re.compile(r"\n{3,}")
# A regex scan, not a loop over characters: the corpus pipeline normalises every web page.
_LEGACY_LETTER = re.compile(f"[{''.join(sorted(LEGACY_LETTERS))}]")


def looks_tajik(text: str) -> bool:
    """A cheap, offline test: is this Cyrillic text Tajik (after legacy repair), not Russian, Serbian or Uzbek?

    Counts Tajik function words and Tajik-only letters against letters Tajik never uses. Short messages
    ("Салом, чӣ хел?") pass on one function word or one Tajik-only letter without Russian-only letters.
    """
    if any(ch in OTHER_CYRILLIC_LETTERS for ch in text):
        return False
    repaired = text.translate(LEGACY_FONT_MAP)
    words = [w.lower() for w in _WORD.findall(repaired)]
    cyrillic_words = [w for w in words if "\u0400" <= w[0] <= "\u04ff"]
    if not cyrillic_words:
        return False
    hits = sum(w in _TAJIK_WORDS for w in cyrillic_words)
    russian = sum(any(ch in RUSSIAN_ONLY_LETTERS for ch in w) for w in cyrillic_words)
    tajik_letters = sum(any(ch in "ғӣқӯҳҷ" for ch in w) for w in cyrillic_words)
    # Uzbek Cyrillic shares қ ғ ҳ ў but writes ҷ as ж and has no ӣ; its own function words mark it.
    uzbek = sum(w in _UZBEK_WORDS for w in cyrillic_words)
    n = len(cyrillic_words)
    if uzbek > hits:
        return False
    if n <= 6:
        return (hits >= 1 or tajik_letters >= 1) and russian == 0
    return hits / n >= 0.05 and russian / n < 0.08 and (hits + tajik_letters) / n >= 0.1


_UZBEK_WORDS = frozenset("бир билан учун эса бу ёки эмас бўлган бўлиши керак ҳамда унинг ушбу мумкин".split())


# Below this many words the bilingual test has too little Tajik left to judge.
_BILINGUAL_MIN_WORDS = 50


def repair_legacy_font(text: str) -> str:
    """Map legacy-font code points back to ҳ ҷ ӣ ӯ қ ғ when ``text`` is Tajik; else return it as is.

    "Tajik" is judged on the whole text or, for long texts, on its words without Russian-only letters: official
    PDFs are often bilingual (Tajik and Russian side by side), and their Tajik half needs the repair as much as
    a Tajik-only document does. Russian words carry none of the legacy code points, so they pass unchanged.
    """
    if not _LEGACY_LETTER.search(text):
        return text
    return text.translate(LEGACY_FONT_MAP) if _uses_tajik_legacy_font(text) else text


def _uses_tajik_legacy_font(text: str) -> bool:
    if looks_tajik(text):
        return True
    if any(ch in OTHER_CYRILLIC_LETTERS for ch in text):
        return False
    words = [w for w in _WORD.findall(text) if not any(ch in RUSSIAN_ONLY_LETTERS for ch in w)]
    return len(words) >= _BILINGUAL_MIN_WORDS and looks_tajik(" ".join(words))


def normalize(text: str) -> str:
    """NFC, legacy-font repair, no control characters, single spaces, at most one blank line in a row."""
    text = unicodedata.normalize("NFC", text)
    text = _CONTROL.sub("", text).replace("\r\n", "\n").replace("\r", "\n")
    text = repair_legacy_font(text)
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()
