"""Offline language identification for Tajik: py3langid's model combined with the Tajik-only letters.

datatrove's own language filter downloads fastText models at run time; this one ships with py3langid. Its
``tg`` probability already recognises Tajik typed on a Russian keyboard (г и к у х ч for ғ ӣ қ ӯ ҳ ҷ), which
fastText reads as Russian. The letters add what a character model misses on short or mixed texts: a text
whose Cyrillic letters are ~4 % ғ ӣ қ ӯ ҳ ҷ is Tajik, unless it also has letters Tajik never uses (Uzbek ў,
Kazakh ә ө ү …) or the model reads it as Uzbek, which shares қ ғ ҳ. Tajik function words, in either
spelling, are a third, weaker signal (``tajik.looks_tajik``).

    score = 1 - (1 - P_model(tg)) × (1 - letter_evidence) × (1 - word_evidence)      (a noisy-OR)
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter

from tajik import looks_tajik, tajik_letter_share
from tajik.letters import OTHER_CYRILLIC_LETTERS, TAJIK_ONLY_LETTERS

if TYPE_CHECKING:
    from datatrove.pipeline.writers.disk_base import DiskWriter

# Letters of Uzbek (ў), Kazakh, Kyrgyz, Tatar and Bashkir Cyrillic that Tajik never writes.
_TURKIC_LETTERS = frozenset("ўЎәӘөӨүҮұҰңҢһҺҗҖҡҠҙҘҫҪ")
_FOREIGN_LETTERS = _TURKIC_LETTERS | OTHER_CYRILLIC_LETTERS
# Tajik function words (either spelling, see tajik.looks_tajik) halve the model's doubt: enough to carry Tajik
# typed on a Russian keyboard over the line when the model leans Tajik, never enough on their own.
_WORD_EVIDENCE = 0.5
SCORE_BINS = 20


@dataclass(frozen=True)
class LanguageGuess:
    language: str
    score: float
    model_language: str
    model_tajik_probability: float
    tajik_letter_share: float


@functools.cache
def _identifier() -> Any:
    """py3langid's model, loaded once per process (0.7 s), with probabilities normalised over its languages."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def _count(text: str, letters: frozenset[str]) -> int:
    return sum(text.count(letter) for letter in letters)


def _sample(text: str, max_chars: int) -> str:
    """At most ``max_chars`` of ``text``, taken from four evenly spaced places so one part cannot decide alone."""
    if len(text) <= max_chars:
        return text
    piece = max_chars // 4
    step = (len(text) - piece) // 3
    return "\n".join(text[i * step : i * step + piece] for i in range(4))


def identify(text: str, *, threshold: float, letter_share_for_full_score: float, max_chars: int) -> LanguageGuess:
    sample = _sample(text, max_chars)
    ranked = dict(_identifier().rank(sample))
    model_language = max(ranked, key=ranked.__getitem__)
    p_tajik = float(ranked.get("tg", 0.0))
    share = tajik_letter_share(sample)
    foreign = _count(sample, _FOREIGN_LETTERS)
    tajik_letters = _count(sample, TAJIK_ONLY_LETTERS)
    letters_speak_for_tajik = foreign <= 0.1 * tajik_letters and ranked.get("uz", 0.0) <= p_tajik
    letter_evidence = min(1.0, share / letter_share_for_full_score) if letters_speak_for_tajik else 0.0
    doubt = (1.0 - p_tajik) * (1.0 - letter_evidence)
    # The word test is the slowest part; ask it only when its answer can move the score across the threshold.
    if 1.0 - doubt < threshold <= 1.0 - doubt * (1.0 - _WORD_EVIDENCE) and looks_tajik(sample):
        doubt *= 1.0 - _WORD_EVIDENCE
    score = 1.0 - doubt
    # A rejected text is named after the model's guess, which is what the report's removal reasons show.
    rejected_as = model_language if model_language != "tg" else "tg_low_score"
    language = "tg" if score >= threshold else rejected_as
    return LanguageGuess(language, score, model_language, p_tajik, share)


class TajikLanguageFilter(BaseFilter):
    """Keeps documents whose Tajik score reaches the threshold; records the score either way."""

    name = "🇹🇯 Tajik language ID"

    def __init__(
        self,
        threshold: float,
        letter_share_for_full_score: float,
        max_chars: int,
        exclusion_writer: DiskWriter | None = None,
    ) -> None:
        super().__init__(exclusion_writer)
        self.threshold = threshold
        self.letter_share_for_full_score = letter_share_for_full_score
        self.max_chars = max_chars

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        guess = identify(
            doc.text,
            threshold=self.threshold,
            letter_share_for_full_score=self.letter_share_for_full_score,
            max_chars=self.max_chars,
        )
        doc.metadata["language"] = guess.language
        doc.metadata["language_score"] = round(guess.score, 4)
        doc.metadata["tajik_letter_share"] = round(guess.tajik_letter_share, 4)
        score_bin = min(int(guess.score * SCORE_BINS), SCORE_BINS - 1)
        self.stat_update(f"score_bin/{doc.metadata.get('source', '')}/{score_bin:02d}")
        if guess.language == "tg":
            return True
        return False, f"language_{guess.language}"


def tajik_score(text: str) -> tuple[bool, float]:
    """Whether ``text`` is Tajik, and how sure, by the curation pipeline's language ID at its threshold."""
    from training.data.config import LanguageOptions

    if not text.strip():
        return False, 0.0
    options = LanguageOptions()
    guess = identify(
        text,
        threshold=options.threshold,
        letter_share_for_full_score=options.letter_share_for_full_score,
        max_chars=options.max_chars,
    )
    return guess.language == "tg", guess.score
