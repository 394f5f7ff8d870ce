"""Restoring the Tajik letters of text typed on a Russian keyboard ("Ман имруз ба мактаб" → "имрӯз")."""

from __future__ import annotations

from tajik.letters import TAJIK_ONLY_LETTERS
from tajik.lexicon import Lexicon, default_lexicon, key_of, word_pairs


def match_case(form: str, typed: str) -> str:
    """``form`` (lower case) written the way ``typed`` was: all capitals, a capital first, or as is."""
    # "YuNESKO": to_latin writes a capital Ю as "Yu", so a word of capitals may have a few small letters.
    capitals = sum(ch.isupper() for ch in typed)
    if capitals > 1 and capitals > 2 * sum(ch.islower() for ch in typed):
        return form.upper()
    if typed[:1].isupper():
        return form[:1].upper() + form[1:]
    return form


def has_tajik_letters(text: str) -> bool:
    return any(ch in TAJIK_ONLY_LETTERS for ch in text)


def restore(text: str, lexicon: Lexicon | None = None) -> str:
    """``text`` with ғ ӣ қ ӯ ҳ ҷ put back where the lexicon says the word needs them.

    Text that has any of those letters already was typed on a Tajik keyboard and is returned unchanged. Unknown
    words, and words whose key several forms share without a clear favourite, stay as typed; so does a word
    that is itself a proper form unless the next word decides ("давлати мо", "давлатӣ ва"). Only Tajik text
    should be passed: Russian "у" would become "ӯ".
    """
    if has_tajik_letters(text):
        return text
    lexicon = lexicon or default_lexicon()
    out: list[str] = []
    last = 0
    for match, next_key in word_pairs(text):
        typed = match.group()
        lower = typed.lower()
        form = lexicon.choose(key_of(lower), next_key, lower)
        if form is not None and form != lower:
            out.append(text[last : match.start()])
            out.append(match_case(form, typed))
            last = match.end()
    if not out:
        return text
    out.append(text[last:])
    return "".join(out)
