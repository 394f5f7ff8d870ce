"""Reading the bytes of an incoming SMS: gateways declare an encoding, and are sometimes wrong.

Kannel hands over the message bytes untouched (``mo-recode`` off, on purpose: its own recoding silently drops
everything after an invalid UTF-16 unit) with the coding and charset it saw. Phones and SMSCs send UCS-2
with broken surrogates, UTF-8 declared as GSM-7, Windows-1251 from old integrations. The declared encoding is
tried first, then the ones gateways get wrong most; a decoding that yields text no Tajik or Russian user writes
(CJK from misread UTF-8, say) is passed over for one that reads. UTF-8 with a damaged byte or two (a lost
byte on the radio path) stays UTF-8, with U+FFFD where the damage is: Windows-1251 reads any bytes at all, so
it is taken only for bytes that look nothing like UTF-8. Bytes that fit no encoding keep every readable
character, with U+FFFD where the damage is, so nothing the user wrote is lost.
"""

from __future__ import annotations

import codecs
import contextlib
import unicodedata

REPLACEMENT = "\ufffd"
# Below this share of readable characters a message is not worth a model turn: the user is asked to resend.
MIN_READABLE_SHARE = 0.6
_PLAUSIBLE_SHARE = 0.9
_STRICT_FALLBACKS = ("utf-8", "utf-16-be")


def _codec(charset: str) -> str | None:
    try:
        return codecs.lookup(charset.strip()).name if charset.strip() else None
    except LookupError:
        return None


def _plausible_char(ch: str) -> bool:
    """Characters Tajik, Russian and English SMS are made of: Cyrillic, Latin, digits, punctuation, emoji."""
    code = ord(ch)
    if 0x0400 <= code <= 0x052F or 0x20 <= code <= 0x24F or ch in "\n\r\t":
        return not (0x7F <= code <= 0x9F)  # C1 controls: what bytes misread as Latin-1 look like
    return unicodedata.category(ch)[0] in "PSZN"


def plausible(text: str) -> bool:
    return bool(text) and sum(map(_plausible_char, text)) >= _PLAUSIBLE_SHARE * len(text)


def readable_share(text: str) -> float:
    if not text:
        return 0.0
    return sum(ch != REPLACEMENT and (ch.isprintable() or ch in "\n\t") for ch in text) / len(text)


def damaged_utf8_text(data: bytes) -> str | None:
    """``data`` as UTF-8 with U+FFFD for the damage, when it is mostly well-formed UTF-8; else None.

    Windows-1251 Cyrillic almost never forms a valid UTF-8 sequence (a capital letter followed by one of a few
    punctuation bytes), so a message whose non-ASCII characters are mostly valid sequences is UTF-8.
    """
    text = data.decode("utf-8", errors="replace")
    damage = text.count(REPLACEMENT)
    valid = sum(not ch.isascii() for ch in text) - damage
    return text if valid > 2 * damage and plausible(text.replace(REPLACEMENT, " ")) else None


def decode_text(data: bytes, charset: str, ucs2: bool = False) -> str | None:
    """The text of an SMS given as ``data`` in ``charset`` (UCS-2 when ``ucs2`` and no charset is given).

    None when too little of it can be read to be worth answering; the caller tells the user so.
    """
    declared = _codec(charset) or ("utf-16-be" if ucs2 else "utf-8")
    strict: str | None = None
    with contextlib.suppress(UnicodeDecodeError):
        strict = data.decode(declared)
    if strict is not None and plausible(strict):
        return strict
    # Valid but odd in the declared encoding: only another strict reading may replace it.
    for codec in _STRICT_FALLBACKS:
        if codec == declared or (codec == "utf-16-be" and len(data) % 2):
            continue
        try:
            candidate = data.decode(codec)
        except UnicodeDecodeError:
            continue
        if plausible(candidate):
            return candidate
    if strict is not None:  # valid in the declared encoding, only unusual (Chinese, say): the user wrote it
        return strict
    damaged_utf8 = damaged_utf8_text(data)
    if damaged_utf8 is not None:
        return damaged_utf8
    with contextlib.suppress(UnicodeDecodeError):
        legacy = data.decode("cp1251")
        if plausible(legacy):
            return legacy
    damaged = data.decode(declared, errors="replace")
    return damaged if readable_share(damaged) >= MIN_READABLE_SHARE else None
