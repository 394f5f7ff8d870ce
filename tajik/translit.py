"""Tajik Cyrillic to Latin, for GSM-7 SMS (160 characters a segment instead of 70)."""

from __future__ import annotations

_LATIN = {
    "а": "a", "б": "b", "в": "v", "г": "g", "ғ": "gh", "д": "d", "е": "e", "ё": "yo", "ж": "zh", "з": "z",
    "и": "i", "ӣ": "i", "й": "y", "к": "k", "қ": "q", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p",
    "р": "r", "с": "s", "т": "t", "у": "u", "ӯ": "u", "ф": "f", "х": "x", "ҳ": "h", "ч": "ch", "ҷ": "j",
    "ш": "sh", "ъ": "'", "э": "e", "ю": "yu", "я": "ya", "ц": "ts", "щ": "shch", "ы": "y", "ь": "",
}  # fmt: skip


def to_latin(text: str) -> str:
    """Transliterate Tajik Cyrillic to plain ASCII Latin; other characters pass through."""
    out = []
    for ch in text:
        low = ch.lower()
        latin = _LATIN.get(low)
        if latin is None:
            out.append(ch)
        elif ch != low:
            out.append(latin[:1].upper() + latin[1:])
        else:
            out.append(latin)
    return "".join(out)
