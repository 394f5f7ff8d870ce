"""Is this short text Tajik? The one decision behind the ``tajik_replies`` metric and the SFT language filter.

It is the bot's decision (``tajik.chat_language``, on the word-form lexicon ``tajik/data/lexicon.txt``), with
gates against what a chat line never is but a broken model writes. The corpus language ID
(``training.data.langid``) weighs a character model and the share of ғ ӣ қ ӯ ҳ ҷ, which is right for documents
but wrong for chat-sized text both ways: a random-weight model's letter soup, full of Tajik letters, control
characters and ``�``, scored as Tajik, and a genuine two-line instruction without a Tajik-only letter did not.
So a text is Tajik only with

- **printable text**: no control or replacement character, and at least ``MIN_PRINTABLE`` of its non-space
  characters are letters, digits or punctuation;
- **no letter soup**: no word is a run of one repeated syllable, and no one word makes up more than
  ``MAX_ONE_WORD_SHARE`` of a longer text;
- **no foreign letters**: none of Uzbek, Kazakh, Kyrgyz or Serbian Cyrillic, and few of Russian's ы щ ь ц;
- **the bot's verdict**: ``tajik.chat_language(text) == "tg"``, for every text;
- **real words**: at least ``MIN_WORD_EVIDENCE`` of its words are words of the tajik lexicon, a known stem with
  Tajik affixes or a compound counting 0.7 (``tajik.tajik_word_weight``, in proper, Russian-keyboard or Latin
  spelling), since ``chat_language`` also counts letters that only Tajik writes;
- for a text of more than ``CHAT_WORDS`` words, **a Tajik score** at the corpus threshold: the noisy-OR of the
  character model's P(tg), the Tajik-letter evidence and the word evidence (so real Tajik words carry a text
  that has no Tajik-only letter). A chat-sized text skips it: the character model cannot judge a few words, and
  it knows no Tajik in Latin letters.

A chat line in any spelling is therefore Tajik here exactly when the bot takes it for Tajik, unless a gate finds
it broken.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass

from tajik import chat_language, tajik_word_weight
from tajik.chat import TAJIK
from tajik.letters import OTHER_CYRILLIC_LETTERS, RUSSIAN_ONLY_LETTERS
from tajik.lexicon import WORD

MIN_PRINTABLE = 0.97
MIN_WORD_EVIDENCE = 0.25
MAX_ONE_WORD_SHARE = 0.4
# Up to this many words a text is a chat line: the bot's decision alone judges its language.
CHAT_WORDS = 12
# Undecodable bytes (U+FFFD) and control characters never belong to a reply, however few.
_BROKEN = re.compile("[\ufffd\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_TURKIC = frozenset("ўЎәӘөӨүҮұҰңҢһҺҗҖҡҠҙҘҫҪ")
_SERBIAN = OTHER_CYRILLIC_LETTERS
_REPEATED_SYLLABLE = re.compile(r"(\w{1,3})\1{3,}")
_PUNCTUATION_OK = frozenset("«»—–-…")


@dataclass(frozen=True)
class LanguageVerdict:
    is_tajik: bool
    # "tajik", or why not: "empty", "unprintable", "letter_soup", "foreign_letters", "language_<guess>"
    reason: str
    score: float  # the noisy-OR Tajik score (0 when a gate failed first)
    printable_share: float
    word_evidence: float  # weighted share of words the tajik lexicon knows


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
    """Share of ``words`` that the tajik lexicon knows, each weighted by how surely (``tajik.tajik_word_weight``)."""
    if not words:
        return 0.0
    return sum(tajik_word_weight(word) for word in words) / len(words)


def reply_language(text: str) -> LanguageVerdict:
    """Whether a short text (a reply, an instruction, a chat line) is Tajik, and why not when it is not."""
    from training.data.config import LanguageOptions
    from training.data.langid import identify

    if not text.strip():
        return LanguageVerdict(False, "empty", 0.0, 0.0, 0.0)
    printable = _printable_share(text)
    words = [word.lower() for word in WORD.findall(text)]
    evidence = word_evidence([word for word in words if len(word) >= 2])
    if printable < MIN_PRINTABLE or _BROKEN.search(text):
        return LanguageVerdict(False, "unprintable", 0.0, printable, evidence)
    if any(_REPEATED_SYLLABLE.search(word) for word in words) or _one_word_over_and_over(words):
        return LanguageVerdict(False, "letter_soup", 0.0, printable, evidence)
    letters = [ch for word in words for ch in word]
    russian = sum(ch in RUSSIAN_ONLY_LETTERS for ch in letters)
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
    language = chat_language(text)
    if language != TAJIK:
        return LanguageVerdict(False, f"language_{language}", score, printable, evidence)
    if len(words) > CHAT_WORDS and score < options.threshold:
        other = guess.model_language if guess.model_language != TAJIK else "low_score"
        return LanguageVerdict(False, f"language_{other}", score, printable, evidence)
    if evidence < MIN_WORD_EVIDENCE:
        # Tajik letters in Tajik proportions, but hardly a Tajik word: what a random-weight model writes.
        return LanguageVerdict(False, "letter_soup", score, printable, evidence)
    return LanguageVerdict(True, "tajik", score, printable, evidence)
