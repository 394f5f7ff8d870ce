"""Tajik Cyrillic to Latin (for GSM-7 SMS and for users who write in Latin) and back.

``to_latin`` spells the way most people type Tajik in Latin letters: ch sh zh j gh q x h, y yo yu ya, ' for ъ.
It merges и/ӣ, у/ӯ and е/э, so ``from_latin`` asks the lexicon which Cyrillic form a Latin word stands for, and
falls back to letter rules for words it does not know. It also reads what people type besides that: kh for х,
g' for ғ, and the letters of the official Latin alphabet of 1928–1940 (ç ş ƶ ƣ ī ū, c for ч).
"""

from __future__ import annotations

import re

from tajik.lexicon import Lexicon, default_lexicon, key_of
from tajik.restore import match_case

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


_APOSTROPHES = "'’ʼ‘`"
_LATIN_LETTER = "A-Za-z\u00c0-\u024f"
LATIN_WORD = re.compile(f"[{_LATIN_LETTER}]+(?:[{_APOSTROPHES}][{_LATIN_LETTER}]+)*[{_APOSTROPHES}]?")
_ROMAN = re.compile(r"M{0,4}(CM|CD|D?C{0,3})(XC|XL|L?X{0,3})(IX|IV|V?I{0,3})")

# Other spellings of the same sounds, as the lexicon's Latin keys (``to_latin``) write them.
_CANONICAL = [
    ("kh", "x"), ("g'", "gh"), ("gʻ", "gh"), ("g’", "gh"), ("ç", "j"), ("ş", "sh"), ("š", "sh"), ("ƶ", "zh"),
    ("ž", "zh"), ("č", "ch"), ("ƣ", "gh"), ("ğ", "gh"), ("ī", "i"), ("ū", "u"), ("w", "v"), ("’", "'"),
    ("ʼ", "'"), ("‘", "'"), ("`", "'"),
]  # fmt: skip
_LONE_C = re.compile("c(?!h)")

_DIGRAPHS = {"sh": "ш", "ch": "ч", "zh": "ж", "gh": "ғ", "kh": "х", "yo": "ё", "yu": "ю", "ya": "я", "ts": "тс"}
_LETTERS = {
    "a": "а", "b": "б", "c": "ч", "d": "д", "e": "е", "f": "ф", "g": "г", "h": "ҳ", "i": "и", "j": "ҷ", "k": "к",
    "l": "л", "m": "м", "n": "н", "o": "о", "p": "п", "q": "қ", "r": "р", "s": "с", "t": "т", "u": "у", "v": "в",
    "w": "в", "x": "х", "y": "й", "z": "з", "'": "ъ", "’": "ъ", "ʼ": "ъ", "‘": "ъ", "`": "ъ",
    "ī": "ӣ", "ū": "ӯ", "ç": "ҷ", "ş": "ш", "š": "ш", "ƶ": "ж", "ž": "ж", "č": "ч", "ƣ": "ғ", "ğ": "ғ",
    "é": "е", "á": "а", "ó": "о", "ú": "у", "í": "и",
}  # fmt: skip


def canonical_latin(word: str) -> str:
    """A lower-case Latin word in ``to_latin``'s spelling (kh → x, ş → sh, ī → i, lone c → ch …)."""
    word = word.lower()
    for other, canonical in _CANONICAL:
        if other in word:
            word = word.replace(other, canonical)
    return _LONE_C.sub("ch", word)


def spell_cyrillic(word: str) -> str:
    """Letter-by-letter Cyrillic of a lower-case Latin word, for words the lexicon does not know."""
    out: list[str] = []
    i = 0
    while i < len(word):
        pair = word[i : i + 2]
        if pair in _DIGRAPHS:
            out.append(_DIGRAPHS[pair])
            i += 2
            continue
        ch = word[i]
        if ch == "e" and i == 0:
            out.append("э")  # Tajik writes э at the start of a word, е after a consonant
        else:
            out.append(_LETTERS.get(ch, ch))
        i += 1
    return "".join(out)


def _choose(lexicon: Lexicon, lower: str, next_key: str) -> str:
    forms = lexicon.latin_forms(lower)
    canonical = canonical_latin(lower)
    if forms is None and canonical != lower:
        forms = lexicon.latin_forms(canonical)
    spelled = spell_cyrillic(canonical)
    if forms is not None:
        chosen = lexicon.choose_among(forms, key_of(next(iter(forms))), next_key)
        if chosen is not None:
            return chosen
    # Typed loosely (h for х, k for қ): the Russian-keyboard key still finds the word; the letters typed decide
    # between its forms where they can.
    key = key_of(spelled)
    loose = lexicon.by_key.get(key)
    if loose is not None and spelled in loose:
        return spelled
    return lexicon.choose(key, next_key, None) or spelled


def from_latin(text: str, lexicon: Lexicon | None = None) -> str:
    """Tajik written in Latin letters, in Tajik Cyrillic; Roman numerals and other characters pass through."""
    lexicon = lexicon or default_lexicon()
    matches = list(LATIN_WORD.finditer(text))
    if not matches:
        return text
    keys = [key_of(spell_cyrillic(canonical_latin(m.group()))) for m in matches]
    out: list[str] = []
    last = 0
    for i, match in enumerate(matches):
        typed = match.group()
        out.append(text[last : match.start()])
        last = match.end()
        if len(typed) > 1 and typed.isupper() and _ROMAN.fullmatch(typed):
            out.append(typed)
            continue
        following = matches[i + 1] if i + 1 < len(matches) else None
        next_key = keys[i + 1] if following is not None and not text[match.end() : following.start()].strip() else "."
        out.append(match_case(_choose(lexicon, typed.lower(), next_key), typed))
    out.append(text[last:])
    return "".join(out)
