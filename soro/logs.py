"""Logging set-up shared by every process: one line per event, ids not message text."""

from __future__ import annotations

import logging

# Per-request lines from these libraries would carry bot tokens in URLs or message bodies (aiosqlite's debug
# lines quote every statement with its parameters: message text and phone numbers).
QUIET_LOGGERS = ("httpx", "httpx2", "openai", "aiogram.event", "aiosqlite")


def setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in QUIET_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)
