"""Logging set-up shared by every process: one line per event, ids not message text."""

from __future__ import annotations

import logging


def setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Per-request lines from these libraries would carry bot tokens in URLs or message bodies.
    for noisy in ("httpx", "httpx2", "openai", "aiogram.event"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
