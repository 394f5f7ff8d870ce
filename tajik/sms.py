"""SMS segment arithmetic (3GPP TS 23.038 / 23.040) and fitting an answer to a paid segment budget.

No Cyrillic letter is in GSM-7, so Tajik is sent as UCS-2: 70 characters in one segment, 67 per segment
when concatenated. Pure GSM-7 text gets 160 / 153 (characters of the extension table count twice).
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


class SmsEncoding(enum.StrEnum):
    GSM7 = "gsm7"
    UCS2 = "ucs2"

    @property
    def single(self) -> int:
        return 160 if self is SmsEncoding.GSM7 else 70

    @property
    def concatenated(self) -> int:
        return 153 if self is SmsEncoding.GSM7 else 67


def encoding_of(text: str) -> SmsEncoding:
    ok = all(ch in _GSM7_BASIC or ch in _GSM7_EXTENSION for ch in text)
    return SmsEncoding.GSM7 if ok else SmsEncoding.UCS2


def units(text: str, encoding: SmsEncoding | None = None) -> int:
    """Length in the encoding's units: septets for GSM-7, UTF-16 code units for UCS-2."""
    encoding = encoding or encoding_of(text)
    if encoding is SmsEncoding.GSM7:
        return len(text) + sum(ch in _GSM7_EXTENSION for ch in text)
    return len(text.encode("utf-16-le")) // 2


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


_SENTENCE_END = re.compile(r"[.!?…։؟]['\")»]*(?=\s)")


def fit_to_budget(text: str, segments: int) -> tuple[str, bool]:
    """Trim ``text`` to fit ``segments`` segments, at a sentence end if one is near, else at a word boundary.

    Returns the text to deliver and whether it was trimmed; a trimmed answer ends with "…". A word or a
    number is never cut in half, except a single word longer than the whole budget.
    """
    text = text.strip()
    if segment_count(text) <= segments:
        return text, False
    encoding = encoding_of(text + ELLIPSIS)
    limit = char_budget(segments, encoding)
    # Find the longest prefix (in units) that fits together with the ellipsis.
    room = limit - units(ELLIPSIS, encoding)
    prefix_end = 0
    used = 0
    for i, ch in enumerate(text):
        used += units(ch, encoding)
        if used > room:
            break
        prefix_end = i + 1
    head = text[:prefix_end]
    cut_at_word = prefix_end < len(text) and not text[prefix_end].isspace()
    sentence_ends = [m.end() for m in _SENTENCE_END.finditer(head + " ")]
    if sentence_ends and sentence_ends[-1] >= len(head) * 0.6:
        return head[: sentence_ends[-1]].rstrip(), True
    if cut_at_word:
        space = max(head.rfind(" "), head.rfind("\n"))
        if space > 0:
            head = head[:space]
    head = head.rstrip(" \n\t,;:-—–")
    return head + ELLIPSIS, True


def split_segments(text: str) -> list[str]:
    """Split ``text`` into the parts of a concatenated SMS, each within one segment, breaking only at spaces.

    The parts joined together give back ``text`` exactly. A part breaks inside a word only when that word
    alone is longer than a segment.
    """
    encoding = encoding_of(text)
    if units(text, encoding) <= encoding.single:
        return [text]
    size = encoding.concatenated
    parts: list[str] = []
    start = 0
    while start < len(text):
        used = 0
        end = start
        last_break = -1
        while end < len(text):
            step = units(text[end], encoding)
            if used + step > size:
                break
            used += step
            if text[end].isspace():
                last_break = end + 1
            end += 1
        if end < len(text) and last_break > start and not text[end].isspace():
            end = last_break
        parts.append(text[start:end])
        start = end
    return parts
