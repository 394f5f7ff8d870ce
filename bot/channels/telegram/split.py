"""Splitting an answer into Telegram messages (at most 4096 characters) at natural boundaries."""

from __future__ import annotations

import re

TELEGRAM_LIMIT = 4096

# Paragraphs first, then lines, then sentences, then words; a hard cut only for a "word" longer than a message.
_BOUNDARIES = (re.compile(r"(?<=\n\n)"), re.compile(r"(?<=\n)"), re.compile(r"(?<=[.!?…])\s+"), re.compile(r"(?<=\s)"))


def split_message(text: str, limit: int = TELEGRAM_LIMIT) -> list[str]:
    """Parts of at most ``limit`` characters, each cut at the largest natural boundary that fits."""
    text = text.strip()
    if len(text) <= limit:
        return [text] if text else []
    parts: list[str] = []
    rest = text
    while len(rest) > limit:
        window = rest[: limit + 1]
        cut = 0
        for boundary in _BOUNDARIES:
            positions = [m.end() for m in boundary.finditer(window) if 0 < m.end() <= limit]
            if positions and positions[-1] >= limit // 3:
                cut = positions[-1]
                break
        if cut == 0:
            cut = limit
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        parts.append(rest)
    return parts
