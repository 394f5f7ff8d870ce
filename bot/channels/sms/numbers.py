"""Phone numbers: E.164 in storage and on the wire, never whole in a log line."""

from __future__ import annotations

import re

_SEPARATORS = re.compile(r"[\s().\-]")


def to_e164(raw: str, default_country_code: str) -> str | None:
    """``raw`` as gateways give it ("+992 90 123 4567", "00992…", "992…", "901234567") in E.164, or None.

    None for what is no phone number at all: short codes and alphanumeric senders ("Tcell"), which must never
    get an answer, since nobody reads it and it still costs a segment.
    """
    number = _SEPARATORS.sub("", raw)
    if number.startswith("+"):
        digits = number[1:]
    elif number.startswith("00"):
        digits = number[2:]
    elif number.startswith(default_country_code) and len(number) > 10:
        digits = number
    else:
        digits = default_country_code + number.lstrip("0")
    if not digits.isascii() or not digits.isdigit() or not 8 <= len(digits) <= 15 or digits[0] == "0":
        return None
    return f"+{digits}"
