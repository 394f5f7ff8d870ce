"""PII scrubbing: Tajik phone formats, e-mail, public IPs and passport-like ids; numbers that are not PII stay."""

from __future__ import annotations

import pytest

from training.data.config import PiiOptions
from training.data.pii import TajikPIIFormatter

FAKE_PHONE = PiiOptions().phone_replacement


@pytest.fixture
def scrub() -> TajikPIIFormatter:
    return TajikPIIFormatter(PiiOptions())


@pytest.mark.parametrize(
    "phone",
    [
        "+992 93 123 45 67",
        "+992931234567",
        "+992 (93) 123-45-67",
        "00992 918 00 11 22",
        "992 90 777 66 55",
        "93 123 45 67",
        "93-123-45-67",
        "(93) 123 45 67",
        "(93)123-45-67",
        "931234567",
        "8 (93) 123-45-67",
        "(372) 21-45-67",
        "8 (3422) 5-12-34",
    ],
)
def test_tajik_phone_numbers_are_replaced(scrub: TajikPIIFormatter, phone: str) -> None:
    assert scrub.format(f"Барои маълумот ба {phone} занг занед.") == f"Барои маълумот ба {FAKE_PHONE} занг занед."


def test_numbers_labelled_as_phones_are_replaced(scrub: TajikPIIFormatter) -> None:
    assert scrub.format("Тел.: 22-33-44") == f"Тел.: {FAKE_PHONE}"
    assert scrub.format("телефон: 2214567") == f"телефон: {FAKE_PHONE}"


@pytest.mark.parametrize(
    "text",
    [
        "Соли 2019 ва 2020 буҷет 12 345 678 сомонӣ буд, барои 1 000 000 нафар.",
        "Қарор аз 29.09.2017, № 443, барои солҳои 2018-2022.",
        # Rows of a statistics table: runs of numbers, not phone numbers.
        "Ванҷ 3579 3743 3933 4130 4344 358 52 56 11 11 11 11 12",
        "Шаҳристон 5417 5495 5585 5687 5801 316 97 264 52 53 53 53 53",
        "Фархор 20232 20289 20356 20443 20539 1036 226",
        "Дар шабакаи хона суроғаи 192.168.1.1 ва 127.0.0.1 истифода мешавад.",
    ],
)
def test_other_numbers_stay(scrub: TajikPIIFormatter, text: str) -> None:
    assert scrub.format(text) == text


def test_email_public_ip_and_ids_are_replaced_and_counted(scrub: TajikPIIFormatter) -> None:
    text = (
        "Ба ali.valiev@mail.tj нависед; сервер 95.142.88.10. Шиносномаи № A1234567, РМА 123456789, паспорт АБ 1234567."
    )
    scrubbed = scrub.format(text)
    assert scrubbed == (
        "Ба email@example.com нависед; сервер 22.214.171.124. Шиносномаи № A0000000, РМА A0000000, паспорт A0000000."
    )
    counts = {key: int(stat.total) for key, stat in scrub.stats.stats.items()}
    assert counts == {"pii_email": 1, "pii_id": 3, "pii_ip": 1, "documents_with_pii": 1}


def test_kinds_can_be_switched_off() -> None:
    scrub = TajikPIIFormatter(PiiOptions(phones=False, emails=False))
    text = "Ба ali@mail.tj ё ба +992 93 123 45 67 нависед."
    assert scrub.format(text) == text
