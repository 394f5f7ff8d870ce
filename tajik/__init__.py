"""Tajik language knowledge shared by the bot, the worker and the training stack.

Dependency-free on purpose: letter tables, normalisation, legacy-font repair, a cheap Tajik test,
SMS segment arithmetic and transliteration.
"""

from tajik.letters import TAJIK_ONLY_LETTERS, tajik_letter_share
from tajik.normalize import looks_tajik, normalize, repair_legacy_font
from tajik.sms import SmsEncoding, char_budget, encoding_of, fit_to_budget, segment_count, split_segments
from tajik.translit import to_latin

__all__ = [
    "TAJIK_ONLY_LETTERS",
    "SmsEncoding",
    "char_budget",
    "encoding_of",
    "fit_to_budget",
    "looks_tajik",
    "normalize",
    "repair_legacy_font",
    "segment_count",
    "split_segments",
    "tajik_letter_share",
    "to_latin",
]
