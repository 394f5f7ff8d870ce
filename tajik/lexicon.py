"""A lexicon of Tajik word forms, counted in curated text, and the decisions it supports.

People without a Tajik keyboard type ч for ҷ, х for ҳ, к for қ, г for ғ, у for ӯ and и for ӣ. Such a word's
*key* is what it becomes on that keyboard ("ҷаҳонӣ" → "чахони"); the lexicon knows which proper forms share a
key and how often each was written, and, for keys with several forms, which word followed each form: the
izofat "давлати мо" and the adjective "давлатӣ ва" share a key, and the next word tells them apart.

File format (UTF-8 text, one record a line, ``#`` starts a comment):
``form<TAB>count`` for every form, then ``form<TAB>next-key<TAB>count`` for forms of ambiguous keys.
"""

from __future__ import annotations

import functools
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tajik.letters import RUSSIAN_KEYBOARD_FALLBACK

DEFAULT_PATH = Path(__file__).with_name("data") / "lexicon.txt"
# The next token is not a word (punctuation, end of line): izofat rarely stands there, an adjective often does.
END = "."
WORD = re.compile(r"[^\W\d_]+")
_BETWEEN_WORDS = re.compile(r"\s*")

# A form needs this share of its key's other forms to be chosen; below it the key is ambiguous and left alone.
_DOMINANCE = 0.75
# The typed form is a word too, but written this rarely against the dominant form: a typo of the source text.
_TYPO_RATIO = 50
# Endings a known stem takes, as typed on a Russian keyboard and as written: "дустам" is "дӯст" + "ам".
_ENDINGS = sorted(
    {
        **{e: e for e in "ам ат аш ем ед анд ад ро амон атон ашон тон шон мон ему мо ест аст анд ҳо".split()},
        **{"хо": "ҳо", "хои": "ҳои", "хоро": "ҳоро", "хоям": "ҳоям", "хоят": "ҳоят", "хояш": "ҳояш"},
        **{"хоямон": "ҳоямон", "хоятон": "ҳоятон", "хояшон": "ҳояшон", "хоеро": "ҳоеро"},
    }.items(),
    key=lambda item: -len(item[0]),
)
_MIN_STEM = 3
# A next word decides only when it was seen with one form this often, never with another.
_CONTEXT_MIN = 2


def key_of(word: str) -> str:
    """A word as typed on a Russian keyboard, lower-cased: the lexicon's index."""
    return word.lower().translate(RUSSIAN_KEYBOARD_FALLBACK)


def word_pairs(text: str) -> Iterator[tuple[re.Match[str], str]]:
    """Each word of ``text`` with the key of the word right after it (``END`` when punctuation comes between)."""
    matches = list(WORD.finditer(text))
    for i, match in enumerate(matches):
        following = matches[i + 1] if i + 1 < len(matches) else None
        if following is not None and _BETWEEN_WORDS.fullmatch(text, match.end(), following.start()):
            yield match, key_of(following.group())
        else:
            yield match, END


@dataclass
class LexiconCounter:
    """Counts word forms (and the next words of every form) in a stream of texts."""

    forms: Counter[str] = field(default_factory=Counter)
    following: Counter[tuple[str, str]] = field(default_factory=Counter)

    def add(self, text: str) -> None:
        for match, next_key in word_pairs(text):
            form = match.group().lower()
            if not "\u0400" <= form[0] <= "\u04ff":  # a Latin abbreviation or name inside Tajik text
                continue
            self.forms[form] += 1
            self.following[(form, next_key)] += 1

    def lexicon(self, min_count: int = 1) -> Lexicon:
        forms = {form: n for form, n in self.forms.items() if n >= min_count}
        by_key: dict[str, dict[str, int]] = defaultdict(dict)
        for form, n in forms.items():
            by_key[key_of(form)][form] = n
        following = {
            (form, next_key): n
            for (form, next_key), n in self.following.items()
            if n >= _CONTEXT_MIN and form in forms and len(by_key[key_of(form)]) > 1
        }
        return Lexicon(dict(by_key), following)


class Lexicon:
    def __init__(self, by_key: dict[str, dict[str, int]], following: dict[tuple[str, str], int]) -> None:
        self.by_key = by_key
        self.contexts: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
        for (form, next_key), n in following.items():
            self.contexts[(key_of(form), next_key)][form] = n
        self.following = following
        self._latin: dict[str, dict[str, int]] | None = None

    @classmethod
    def from_texts(cls, texts: Iterable[str], min_count: int = 1) -> Lexicon:
        counter = LexiconCounter()
        for text in texts:
            counter.add(text)
        return counter.lexicon(min_count)

    def __len__(self) -> int:
        return sum(len(forms) for forms in self.by_key.values())

    def __contains__(self, key: str) -> bool:
        return key in self.by_key

    def count(self, form: str) -> int:
        return self.by_key.get(key_of(form), {}).get(form.lower(), 0)

    def choose(self, key: str, next_key: str, typed: str | None) -> str | None:
        """The proper form of ``key`` before a word with ``next_key``; None when unknown or ambiguous.

        ``typed``: the form as the user wrote it, when that may itself be right (Russian-keyboard text: "кори" is
        a word as well as "корӣ"). It is kept unless the next word or a typo says otherwise.
        """
        forms = self.by_key.get(key)
        if forms is not None:
            return self.choose_among(forms, key, next_key, typed)
        return self._stem_and_ending(key)

    def _stem_and_ending(self, key: str) -> str | None:
        """An unknown word as a known stem with one of the usual endings, when the stem has one form only."""
        for typed_ending, ending in _ENDINGS:
            if key.endswith(typed_ending) and len(key) - len(typed_ending) >= _MIN_STEM:
                forms = self.by_key.get(key[: -len(typed_ending)])
                if forms is not None and len(forms) == 1:
                    return next(iter(forms)) + ending
        return None

    def choose_among(self, forms: dict[str, int], key: str, next_key: str, typed: str | None = None) -> str | None:
        """Like ``choose``, among ``forms`` of ``key`` only (those a Latin spelling allows)."""
        if len(forms) == 1:
            return next(iter(forms))
        context = self.contexts.get((key, next_key))
        if context is not None:
            seen = {form: n for form, n in context.items() if form in forms}
            if len(seen) == 1:
                return next(iter(seen))
        best, n = max(forms.items(), key=lambda item: item[1])
        rest = sum(forms.values())
        if typed is not None:
            typed_count = forms.get(typed, 0)
            if typed_count and not (typed_count == 1 and n >= _TYPO_RATIO * typed_count):
                return typed
            rest -= typed_count
        return best if n >= _DOMINANCE * rest else None

    def latin_forms(self, latin: str) -> dict[str, int] | None:
        """The forms whose ``to_latin`` spelling, lower-cased, is ``latin``."""
        return self._latin_index().get(latin)

    def _latin_index(self) -> dict[str, dict[str, int]]:
        if self._latin is None:
            from tajik.translit import to_latin

            index: dict[str, dict[str, int]] = defaultdict(dict)
            for forms in self.by_key.values():
                for form, n in forms.items():
                    index[to_latin(form)][form] = n
            self._latin = dict(index)
        return self._latin

    def save(self, path: Path, header: str = "") -> None:
        lines = [f"# {line}" for line in header.splitlines()]
        for key in sorted(self.by_key):
            for form, n in sorted(self.by_key[key].items()):
                lines.append(f"{form}\t{n}")
        for (form, next_key), n in sorted(self.following.items()):
            lines.append(f"{form}\t{next_key}\t{n}")
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Lexicon:
        by_key: dict[str, dict[str, int]] = defaultdict(dict)
        following: dict[tuple[str, str], int] = {}
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                if line.startswith("#") or not line.strip():
                    continue
                fields = line.rstrip("\n").split("\t")
                if len(fields) == 2:
                    by_key[key_of(fields[0])][fields[0]] = int(fields[1])
                else:
                    following[(fields[0], fields[1])] = int(fields[2])
        return cls(dict(by_key), following)


@functools.cache
def default_lexicon() -> Lexicon:
    """The lexicon shipped with the package (see data/LEXICON.md for what it was counted from)."""
    return Lexicon.load(DEFAULT_PATH)
