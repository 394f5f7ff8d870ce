"""How the bot reads a message, and in which script it answers.

Tajik typed in Latin letters or on a Russian keyboard reaches the model in proper Cyrillic (the model was
trained on that); the message is stored both ways. Someone who writes Tajik in Latin letters is answered in Latin
letters unless they chose a script in /language. Other languages pass as typed.
"""

from __future__ import annotations

from dataclasses import dataclass

from tajik import Script, chat_language, from_latin, restore, script_of, to_latin

CYRILLIC = "cyrl"
LATIN = "latn"
SCRIPTS = (CYRILLIC, LATIN)


@dataclass(frozen=True)
class Reading:
    text: str  # what the model reads
    typed: str | None  # what the user typed, when it differs from ``text``
    latin: bool | None  # Tajik written in Latin letters (True) or Cyrillic (False); None: not Tajik


def read(body: str) -> Reading:
    """``body`` (normalised) as the model should read it."""
    script = script_of(body)
    if script is Script.OTHER or chat_language(body) != "tg":
        return Reading(body, None, None)
    latin = script is not Script.CYRILLIC
    text = restore(from_latin(body) if latin else body)
    return Reading(text, None if text == body else body, latin)


def answers_in_latin(chosen: str | None, writes_latin: bool | None) -> bool:
    """Whether answers go out in Latin letters: to Tajik messages only, in the script the user chose, else in
    the one they write. ``writes_latin`` None: the latest message was not Tajik."""
    if writes_latin is None:
        return False
    return chosen == LATIN if chosen in SCRIPTS else writes_latin


def render(text: str, latin: bool) -> str:
    return to_latin(text) if latin else text
