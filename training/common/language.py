"""Is this short text Tajik? The one decision behind the ``tajik_replies`` metric and the SFT language filter.

The corpus language ID (``training.data.langid``) weighs a character model and the share of ғ ӣ қ ӯ ҳ ҷ, which
is right for documents but wrong for chat-sized text both ways: a random-weight model's letter soup, full of
Tajik letters, control characters and ``�``, scored as Tajik, and a genuine two-line instruction without a
Tajik-only letter did not. So a short text is Tajik only with

- **printable text**: no control or replacement character, and at least ``MIN_PRINTABLE`` of its non-space
  characters are letters, digits or punctuation;
- **real words**: at least ``MIN_WORD_EVIDENCE`` of its words are known Tajik words (a lexicon of frequent words
  and the project's Tajik sample, matched through their stems, in either spelling), none is a run of one
  repeated syllable, and no one word makes up more than ``MAX_ONE_WORD_SHARE`` of a longer text;
- **no foreign letters**: none of Uzbek, Kazakh, Kyrgyz or Serbian Cyrillic, and few of Russian's ы щ ь ц;
- **a Tajik score** at the corpus threshold: the noisy-OR of the character model's P(tg), the Tajik-letter
  evidence and the word evidence (so real Tajik words carry a short text that has no Tajik-only letter).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from importlib import resources

from tajik.letters import OTHER_CYRILLIC_LETTERS, RUSSIAN_KEYBOARD_FALLBACK

MIN_PRINTABLE = 0.97
MIN_WORD_EVIDENCE = 0.25
MAX_ONE_WORD_SHARE = 0.4
# Undecodable bytes (U+FFFD) and control characters never belong to a reply, however few.
_BROKEN = re.compile("[\ufffd\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_RUSSIAN_ONLY = frozenset("ыщьцЫЩЬЦ")
_TURKIC = frozenset("ўЎәӘөӨүҮұҰңҢһҺҗҖҡҠҙҘҫҪ")
_SERBIAN = OTHER_CYRILLIC_LETTERS
_WORD = re.compile(r"[^\W\d_]+")
_REPEATED_SYLLABLE = re.compile(r"(\w{1,3})\1{3,}")
_PREFIXES = ("наме", "ме", "на", "би")
_SUFFIXES = tuple(
    sorted(
        "ҳоямон ҳоятон ҳояшон ҳоям ҳоят ҳояш ҳоед ҳоянд ҳои ҳоро ҳо ям ят яш ем ед анд ам ат аш ӣ и ро он ист аст ад ед й".split(),
        key=len,
        reverse=True,
    )
)
_PUNCTUATION_OK = frozenset("«»—–-…")


@dataclass(frozen=True)
class LanguageVerdict:
    is_tajik: bool
    # "tajik", or why not: "empty", "unprintable", "letter_soup", "foreign_letters", "language_<guess>"
    reason: str
    score: float  # the noisy-OR Tajik score (0 when a gate failed first)
    printable_share: float
    word_evidence: float  # share of words found in the Tajik lexicon


def _stems(word: str) -> set[str]:
    forms = {word}
    for form in list(forms):
        for prefix in _PREFIXES:
            if form.startswith(prefix) and len(form) - len(prefix) >= 3:
                forms.add(form[len(prefix) :])
    for form in list(forms):
        for suffix in _SUFFIXES:
            if form.endswith(suffix) and len(form) - len(suffix) >= 2:
                forms.add(form[: -len(suffix)])
    return forms


@functools.cache
def _lexicon() -> frozenset[str]:
    assets = resources.files("training.assets")
    text = assets.joinpath("tajik_words.txt").read_text(encoding="utf-8")
    text = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    text += "\n" + assets.joinpath("tajik_sample.txt").read_text(encoding="utf-8")
    words: set[str] = set()
    for word in _WORD.findall(text.lower()):
        # Russian-keyboard spellings (г и к у х ч for ғ ӣ қ ӯ ҳ ҷ) are known in that spelling too.
        for stem in _stems(word):
            words.add(stem)
            words.add(stem.translate(RUSSIAN_KEYBOARD_FALLBACK))
    return frozenset(words)


def _printable_share(text: str) -> float:
    visible = [ch for ch in text if not ch.isspace()]
    if not visible:
        return 0.0
    good = sum(ch != "\ufffd" and (unicodedata.category(ch)[0] in "LNP" or ch in _PUNCTUATION_OK) for ch in visible)
    return good / len(visible)


def _one_word_over_and_over(words: list[str]) -> bool:
    if len(words) < 6:
        return False
    return max(Counter(words).values()) > MAX_ONE_WORD_SHARE * len(words)


def word_evidence(words: list[str]) -> float:
    """Share of ``words`` (lower case) that the Tajik lexicon knows, directly or through a stem."""
    if not words:
        return 0.0
    lexicon = _lexicon()
    return sum(bool(_stems(word) & lexicon) for word in words) / len(words)


def reply_language(text: str) -> LanguageVerdict:
    """Whether a short text (a reply, an instruction, a chat line) is Tajik, and why not when it is not."""
    from training.data.config import LanguageOptions
    from training.data.langid import identify

    if not text.strip():
        return LanguageVerdict(False, "empty", 0.0, 0.0, 0.0)
    printable = _printable_share(text)
    words = [word.lower() for word in _WORD.findall(text)]
    evidence = word_evidence([word for word in words if len(word) >= 2])
    if printable < MIN_PRINTABLE or _BROKEN.search(text):
        return LanguageVerdict(False, "unprintable", 0.0, printable, evidence)
    if any(_REPEATED_SYLLABLE.search(word) for word in words) or _one_word_over_and_over(words):
        return LanguageVerdict(False, "letter_soup", 0.0, printable, evidence)
    letters = [ch for word in words for ch in word]
    russian = sum(ch in _RUSSIAN_ONLY for ch in letters)
    if any(ch in _TURKIC or ch in _SERBIAN for ch in letters) or russian > 0.01 * len(letters):
        return LanguageVerdict(False, "foreign_letters", 0.0, printable, evidence)
    options = LanguageOptions()
    guess = identify(
        text,
        threshold=options.threshold,
        letter_share_for_full_score=options.letter_share_for_full_score,
        max_chars=options.max_chars,
    )
    score = 1.0 - (1.0 - guess.score) * (1.0 - evidence)
    if score < options.threshold:
        other = guess.model_language if guess.model_language != "tg" else "low_score"
        return LanguageVerdict(False, f"language_{other}", score, printable, evidence)
    if evidence < MIN_WORD_EVIDENCE:
        # Tajik letters in Tajik proportions, but hardly a Tajik word: what a random-weight model writes.
        return LanguageVerdict(False, "letter_soup", score, printable, evidence)
    return LanguageVerdict(True, "tajik", score, printable, evidence)
