"""Tajik language knowledge shared by the bot, the worker and the training stack.

Dependency-free on purpose: letter tables, normalisation, legacy-font repair, a cheap Tajik test, SMS segment
arithmetic, transliteration both ways, restoration of Tajik letters by a lexicon of word forms, and the language
of a short chat line.
"""

from tajik.chat import chat_language, is_tajik_chat, tajik_word_weight
from tajik.letters import TAJIK_ONLY_LETTERS, tajik_letter_share
from tajik.lexicon import Lexicon, default_lexicon
from tajik.normalize import looks_tajik, normalize, repair_legacy_font
from tajik.restore import restore
from tajik.script import Script, script_of
from tajik.sms import SmsEncoding, char_budget, encoding_of, fit_to_budget, segment_count, split_segments
from tajik.translit import from_latin, to_latin

__all__ = [
    "TAJIK_ONLY_LETTERS",
    "Lexicon",
    "Script",
    "SmsEncoding",
    "char_budget",
    "chat_language",
    "default_lexicon",
    "encoding_of",
    "fit_to_budget",
    "from_latin",
    "is_tajik_chat",
    "looks_tajik",
    "normalize",
    "repair_legacy_font",
    "restore",
    "script_of",
    "segment_count",
    "split_segments",
    "tajik_letter_share",
    "tajik_word_weight",
    "to_latin",
]
