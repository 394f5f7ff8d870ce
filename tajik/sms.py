"""SMS segment arithmetic (3GPP TS 23.038 / 23.040) and fitting an answer to a paid segment budget.

No Cyrillic letter is in GSM-7, so Tajik is sent as UCS-2: 70 characters in one segment, 67 per segment
when concatenated. Pure GSM-7 text gets 160 / 153 (characters of the extension table count twice).

A "word" here is a run of characters between breakable spaces. A no-break space (as in "1 000") and the space
between two digits (as in "1 000 000") do not break: a number is a word too.
"""

from __future__ import annotations

import enum
import re

_GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")
ELLIPSIS = "…"
# "…" is not in GSM-7: a Latin answer marked with it would become UCS-2 and lose more than half its room.
GSM7_ELLIPSIS = "..."
_NO_BREAK = frozenset("\u00a0\u2007\u202f\u2060")

# What the model is told about an SMS answer; ``{chars}`` is the character budget. The evaluation of the
# SMS budget sends the same words, so it measures the model as the service uses it.
SMS_INSTRUCTION = "Ҷавобро ҳамчун SMS нависед: кӯтоҳ, бе рӯйхат ва аломатҳои Markdown, на зиёда аз {chars} аломат."


class SmsEncoding(enum.StrEnum):
    GSM7 = "gsm7"
    UCS2 = "ucs2"

    @property
    def single(self) -> int:
        return 160 if self is SmsEncoding.GSM7 else 70

    @property
    def concatenated(self) -> int:
        return 153 if self is SmsEncoding.GSM7 else 67

    @property
    def ellipsis(self) -> str:
        return GSM7_ELLIPSIS if self is SmsEncoding.GSM7 else ELLIPSIS


def encoding_of(text: str) -> SmsEncoding:
    ok = all(ch in _GSM7_BASIC or ch in _GSM7_EXTENSION for ch in text)
    return SmsEncoding.GSM7 if ok else SmsEncoding.UCS2


def _char_units(ch: str, encoding: SmsEncoding) -> int:
    if encoding is SmsEncoding.GSM7:
        return 2 if ch in _GSM7_EXTENSION else 1
    return 2 if ord(ch) > 0xFFFF else 1  # a surrogate pair in UTF-16


def units(text: str, encoding: SmsEncoding | None = None) -> int:
    """Length in the encoding's units: septets for GSM-7, UTF-16 code units for UCS-2."""
    encoding = encoding or encoding_of(text)
    return sum(_char_units(ch, encoding) for ch in text)


def segment_count(text: str) -> int:
    encoding = encoding_of(text)
    n = units(text, encoding)
    if n <= encoding.single:
        return 1
    return -(-n // encoding.concatenated)


def char_budget(segments: int, encoding: SmsEncoding = SmsEncoding.UCS2) -> int:
    """Units an answer may use to fit ``segments`` segments."""
    if segments <= 1:
        return encoding.single
    return segments * encoding.concatenated


def _breaks_after(text: str, i: int) -> bool:
    """Whether a line may break after ``text[i]``, a space: not inside a number, not at a no-break space."""
    ch = text[i]
    if not ch.isspace() or ch in _NO_BREAK:
        return False
    return not (ch == " " and 0 < i < len(text) - 1 and text[i - 1].isdigit() and text[i + 1].isdigit())


def _pack(text: str, size: int, encoding: SmsEncoding) -> list[str]:
    """Greedy split into parts of at most ``size`` units, each ending after a breakable space if it can."""
    parts: list[str] = []
    start = 0
    while start < len(text):
        used = 0
        end = start
        last_break = -1
        while end < len(text):
            step = _char_units(text[end], encoding)
            if used + step > size:
                break
            used += step
            if _breaks_after(text, end):
                last_break = end + 1
            end += 1
        if end < len(text) and last_break > start and not _breaks_after(text, end):
            end = last_break
        parts.append(text[start:end])
        start = end
    return parts


def split_segments(text: str) -> list[str]:
    """Split ``text`` into the parts of a concatenated SMS, each within one segment, breaking only at spaces.

    The parts joined together give back ``text`` exactly. A part breaks inside a word only when that word
    alone is longer than a segment.
    """
    encoding = encoding_of(text)
    if units(text, encoding) <= encoding.single:
        return [text]
    return _pack(text, encoding.concatenated, encoding)


def fits(text: str, segments: int) -> bool:
    """Whether ``text`` goes out in at most ``segments`` segments, also when split only at word boundaries."""
    return segment_count(text) <= segments and len(split_segments(text)) <= segments


_SENTENCE_END = re.compile(r"[.!?…։؟]['\")»]*(?=\s)")
_TRAILING = " \n\t,;:-—–"


def fit_to_budget(text: str, segments: int) -> tuple[str, bool]:
    """Trim ``text`` to fit ``segments`` segments, at a sentence end if one is near, else at a word boundary.

    Returns the text to deliver and whether it was trimmed; a trimmed answer ends with "…" ("..." when it is
    GSM-7, so it keeps its larger budget). A word or a number is never cut in half, except a single word longer
    than the whole budget. The result fits even a gateway that splits the parts at word boundaries
    (``split_segments``), so the gateway's own, tighter, split fits too.
    """
    text = text.strip()
    segments = max(1, segments)
    if fits(text, segments):
        return text, False
    encoding = encoding_of(text)
    marker = encoding.ellipsis
    size = encoding.single if segments == 1 else encoding.concatenated
    parts = _pack(text, size, encoding)[:segments]
    head = "".join(parts)
    # Room for " …" at the end of the last part: drop its last word when the marker would not fit.
    last = parts[-1]
    room = size - units(" " + marker, encoding)
    if units(last.rstrip(), encoding) > room:
        head = "".join(parts[:-1]) + _shorten(last, room, encoding)
    head = head.rstrip()
    sentence_ends = [m.end() for m in _SENTENCE_END.finditer(head + " ")]
    if sentence_ends and sentence_ends[-1] >= len(head) * 0.6:
        candidate = head[: sentence_ends[-1]].rstrip() + " " + marker
    else:
        candidate = head.rstrip(_TRAILING) + marker
    # Packing a shorter text can only need fewer parts; this loop is a guard, not the usual path.
    while not fits(candidate, segments) and len(candidate) > len(marker):
        body = candidate[: -len(marker)].rstrip()
        candidate = body[: max(body.rfind(" "), len(body) - 1)].rstrip(_TRAILING) + marker
    return candidate, True


def _shorten(part: str, room: int, encoding: SmsEncoding) -> str:
    """``part`` without its last words, so that it fits ``room`` units; cut inside only a word longer than that."""
    for cut in range(len(part) - 1, 0, -1):
        if _breaks_after(part, cut - 1) and units(part[:cut].rstrip(), encoding) <= room:
            return part[:cut]
    used = 0
    for i, ch in enumerate(part):
        used += _char_units(ch, encoding)
        if used > room:
            return part[:i]
    return part
