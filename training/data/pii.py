"""PII scrubbing: datatrove's e-mail and IP patterns, plus Tajik phone numbers and passport-like ids.

Tajik numbers have nine national digits: mobile ``93 123 45 67`` (operator code + 7), Dushanbe landline
``(372) 21-45-67`` (city code + 6); written with ``+992``/``00992``/``992`` or locally, with spaces, dashes,
dots or brackets. Replacements are well-formed fakes (as datatrove does), so the model learns the shape of a
number or an address, never a real one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from datatrove.pipeline.formatters.base import BaseFormatter

from training.data.config import PiiOptions

_SEP = r"[\s\-.()]*"
# A phone number stands alone: one that continues a run of numbers ("4344 358 52 56 11 11 11") is a table row.
_ALONE_BEFORE = r"(?<![\w+\-.])(?<!\d[\s\-.])"
_ALONE_AFTER = r"(?![\w\-])(?![\s\-.]\d)"
_INTERNATIONAL_PHONE = re.compile(rf"{_ALONE_BEFORE}(?:\+|00)?992{_SEP}(?:\d{_SEP}){{8}}\d{_ALONE_AFTER}")
# Local mobile numbers: an operator code, then 3-2-2 digits, grouped the same way throughout
# (93 123 45 67, (93) 123-45-67) or not at all (931234567).
_OPERATOR = r"(?:9\d|88|77|55|50|11|10|00|01|20|40|70)"
_MOBILE_PHONE = re.compile(
    rf"{_ALONE_BEFORE}(?:8[\s\-]?)?"
    rf"(?:(?:\({_OPERATOR}\)[\s\-]?|{_OPERATOR}[\s\-])\d{{3}}[\s\-]\d{{2}}[\s\-]\d{{2}}|{_OPERATOR}\d{{7}})"
    rf"{_ALONE_AFTER}"
)
# Landlines with a city code (3xx or 3xxx) and the rest in pairs: (372) 21-45-67, 8 (3422) 5-12-34.
_LANDLINE_PHONE = re.compile(
    rf"{_ALONE_BEFORE}(?:8[\s\-]?)?\(?3\d{{2,3}}\)?[\s\-]?\d{{1,2}}[\s\-]\d{{2}}[\s\-]\d{{2}}{_ALONE_AFTER}"
)
# After a word that says "phone", any run of 5-12 digits with separators is a number.
_LABELLED_PHONE = re.compile(
    r"\b(?:[Тт]ел(?:ефон(?:и)?)?|[Tt]el|[Pp]hone)\.?:?\s*(?P<number>\+?\d(?:[\s\-()]?\d){4,11})(?!\d)"
)
# Passport, ID-card and tax numbers after a word that names them: "шиносномаи № A1234567", "РМА 123456789".
_LABELLED_ID = re.compile(
    r"\b(?:[Шш]иноснома|[Пп]аспорт|[Pp]assport|РМА|ИНН)(?:и|ҳо)?[\s:№#]*"
    r"(?P<id>[A-ZА-ЯЁҚҒҲҶӢӮ]{0,2}\s?\d{6,12})(?!\d)"
)
# Passport-like ids on their own: one or two capitals directly before 7-9 digits (A1234567, АБ 12345678).
_STANDALONE_ID = re.compile(r"(?<![\w\-])[A-ZА-ЯЁҚҒҲҶӢӮ]{1,2} ?\d{7,9}(?![\w\-])")


def _national_digits_ok(number: str) -> bool:
    digits = re.sub(r"\D", "", number)
    if digits.startswith("00992"):
        digits = digits[2:]
    if digits.startswith("992"):
        digits = digits[3:]
    elif digits.startswith("8") and len(digits) == 10:
        digits = digits[1:]  # the old trunk prefix
    return len(digits) == 9


@dataclass(frozen=True)
class _Scrubber:
    kind: str
    pattern: re.Pattern[str]
    replacement: str
    valid: Callable[[str], bool] | None = None
    group: str | int = 0


class TajikPIIFormatter(BaseFormatter):
    name = "📞 Tajik PII"

    def __init__(self, options: PiiOptions) -> None:
        super().__init__()
        from datatrove.pipeline.formatters.pii import PIIFormatter, public_ip_validator

        stock = PIIFormatter()
        scrubbers: list[_Scrubber] = []
        if options.emails:
            scrubbers.append(_Scrubber("email", stock.emails_replacer.regex, options.email_replacement))
        if options.id_numbers:
            # Before phones: "РМА 123456789" is a tax number, not a mobile number.
            scrubbers.append(_Scrubber("id", _LABELLED_ID, options.id_replacement, group="id"))
            scrubbers.append(_Scrubber("id", _STANDALONE_ID, options.id_replacement))
        if options.phones:
            scrubbers.append(_Scrubber("phone", _INTERNATIONAL_PHONE, options.phone_replacement, _national_digits_ok))
            scrubbers.append(_Scrubber("phone", _MOBILE_PHONE, options.phone_replacement, _national_digits_ok))
            scrubbers.append(_Scrubber("phone", _LANDLINE_PHONE, options.phone_replacement, _national_digits_ok))
            scrubbers.append(_Scrubber("phone", _LABELLED_PHONE, options.phone_replacement, group="number"))
        if options.ip_addresses:
            # Only public addresses: 127.0.0.1 or 192.168.1.1 in a tutorial are not anybody's.
            scrubbers.append(
                _Scrubber("ip", stock.ip_replacer.regex, stock.ip_replacer.replacements[0], public_ip_validator)
            )
        self.scrubbers = scrubbers
        # A later pattern must not count an earlier replacement as a new finding.
        self.replacements = tuple({scrubber.replacement for scrubber in scrubbers})

    def format(self, text: str) -> str:
        found = False
        for scrubber in self.scrubbers:
            text, count = self._scrub(scrubber, text)
            if count:
                found = True
                self.stat_update(f"pii_{scrubber.kind}", value=count)
        if found:
            self.stat_update("documents_with_pii")
        return text

    def _scrub(self, scrubber: _Scrubber, text: str) -> tuple[str, int]:
        count = 0

        def replace(match: re.Match[str]) -> str:
            nonlocal count
            whole, found = match.group(0), match.group(scrubber.group)
            if scrubber.valid is not None and not scrubber.valid(whole):
                return whole
            if any(found in replacement for replacement in self.replacements):
                return whole
            count += 1
            start, end = match.start(scrubber.group) - match.start(), match.end(scrubber.group) - match.start()
            return whole[:start] + scrubber.replacement + whole[end:]

        return scrubber.pattern.sub(replace, text), count
