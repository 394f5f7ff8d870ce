"""Reading what a gateway hands over: message bytes in declared (and misdeclared) encodings, numbers, keywords."""

from __future__ import annotations

import pytest

from bot.channels.sms.decoding import decode_text
from bot.channels.sms.keywords import Keyword, match_keyword
from bot.channels.sms.numbers import to_e164
from bot.pipeline import redact

TAJIK = "Салом, чӣ хел? Ман дар Хуҷанд зиндагӣ мекунам 😀"


@pytest.mark.parametrize(
    ("data", "charset", "ucs2"),
    [
        (TAJIK.encode("utf-16-be"), "UTF-16BE", True),  # a phone's UCS-2, as Kannel passes it on
        (TAJIK.encode("utf-8"), "UTF-8", False),
        (TAJIK.encode("utf-8"), "UTF-16BE", True),  # declared UCS-2, really UTF-8
        (TAJIK.encode("utf-16-be"), "UTF-8", False),  # declared UTF-8, really UCS-2
        (TAJIK.encode("utf-16-be"), "", True),  # no charset: the coding decides
        (TAJIK.encode("utf-8"), "no-such-charset", False),
    ],
)
def test_tajik_is_read_whatever_the_gateway_declares(data: bytes, charset: str, ucs2: bool) -> None:
    assert decode_text(data, charset, ucs2) == TAJIK


def test_windows_1251_from_old_integrations_is_read() -> None:
    assert decode_text("Привет, как дела?".encode("cp1251"), "UTF-8") == "Привет, как дела?"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        # The second byte of "а" lost on the way: that one character is damaged, the rest is kept.
        ("Са".encode()[:3] + "лом, дӯстон".encode(), "С\ufffdлом, дӯстон"),
        # One byte flipped inside a long Tajik question.
        (TAJIK.encode()[:9] + b"\xff" + TAJIK.encode()[10:], TAJIK[:4] + "\ufffd\ufffd" + TAJIK[5:]),
    ],
    ids=["lost-byte", "flipped-byte"],
)
def test_utf8_with_one_bad_byte_keeps_the_rest_and_marks_the_damage(data: bytes, expected: str) -> None:
    assert decode_text(data, "UTF-8") == expected
    assert decode_text(data, "") == expected  # no charset given: the same reading


@pytest.mark.parametrize("sentence", ["Привет, как дела?", "ПРИВЕТ! Всё хорошо — спасибо.", "Я", "Ёж «Ъ» №5", "Ура"])
def test_windows_1251_is_still_read_as_windows_1251(sentence: str) -> None:
    assert decode_text(sentence.encode("cp1251"), "UTF-8") == sentence


def test_a_broken_ucs2_unit_costs_one_character_not_the_rest_of_the_message() -> None:
    data = "Са".encode("utf-16-be") + b"\xdc\x00" + "лом, дӯстон".encode("utf-16-be")
    assert decode_text(data, "UTF-16BE", ucs2=True) == "Са\ufffdлом, дӯстон"


def test_an_odd_byte_at_the_end_of_ucs2_is_marked_not_dropped_silently() -> None:
    assert decode_text("Салом".encode("utf-16-be") + b"\x04", "UTF-16BE", ucs2=True) == "Салом\ufffd"


def test_bytes_that_are_no_text_in_any_encoding_are_unreadable() -> None:
    assert decode_text(bytes(range(0x80, 0xC0)), "UTF-8") is None


def test_text_in_another_script_declared_correctly_is_kept_as_written() -> None:
    assert decode_text("中文".encode("utf-16-be"), "UTF-16BE", ucs2=True) == "中文"


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("+992 90 123 4567", "+992901234567"),
        ("00992901234567", "+992901234567"),
        ("992901234567", "+992901234567"),
        ("901234567", "+992901234567"),
        ("0901234567", "+992901234567"),
        ("+7 (912) 345-67-89", "+79123456789"),
        ("Tcell", None),
        ("1234", None),
        ("+99290123456789012", None),
    ],
)
def test_numbers_become_e164_and_senders_that_are_no_number_get_nothing(raw: str, e164: str | None) -> None:
    assert to_e164(raw, "992") == e164


def test_a_number_in_a_log_line_shows_only_its_last_digits() -> None:
    assert redact("+992901234567") == "…4567"


@pytest.mark.parametrize(
    ("message", "keyword"),
    [
        ("НАВ", Keyword.NEW),
        (" нав! ", Keyword.NEW),
        ("HAB", Keyword.NEW),  # Latin letters that look like НАВ
        ("Новый", Keyword.NEW),
        ("new.", Keyword.NEW),
        ("ИСТ", Keyword.STOP),
        ("Стоп!", Keyword.STOP),
        ("CTOП", Keyword.STOP),
        ("STOP", Keyword.STOP),
        ("stop", Keyword.STOP),
        ("Навбат", None),
        ("нав нав", None),
        ("Ист, ман савол дорам: чаро осмон кабуд аст?", None),
    ],
)
def test_keywords_match_the_whole_message_case_and_script_insensitively(message: str, keyword: Keyword | None) -> None:
    assert match_keyword(message) is keyword
