"""The log filter of the SMS paths: what aiohttp and exceptions write is masked before any handler sees it."""

from __future__ import annotations

import logging

import pytest

from bot.channels.sms.redaction import REDACTOR, install_redaction

SECRET = "0123456789abcdef-secret"


def test_a_refused_request_line_keeps_neither_secret_nor_number_nor_text(caplog: pytest.LogCaptureFixture) -> None:
    install_redaction(SECRET, "pw")
    line = f"b'/sms/kannel?secret={SECRET}&id=1&from=%2B992901234567&text=%D0%A1%D0%B0&coding=0'"
    logging.getLogger("aiohttp.server").error("Error handling request: %s", line)
    [record] = caplog.records
    message = record.getMessage()
    assert SECRET not in message and "901234567" not in message and "%D0%A1" not in message
    assert "id=1" in message and "coding=0" in message  # what correlates is kept


def test_a_traceback_is_masked_too(caplog: pytest.LogCaptureFixture) -> None:
    install_redaction(SECRET)
    try:
        raise ValueError(f"cannot fetch http://kannel:{SECRET}@bot:8080/sms/kannel/dlr for +992901234567")
    except ValueError:
        logging.getLogger("bot.channels.sms.dispatch").exception("failed")
    assert SECRET not in caplog.text and "+992901234567" not in caplog.text
    assert "ValueError" in caplog.text and "http://…@bot:8080" in caplog.text


def test_credentials_in_headers_and_short_passwords_in_urls_are_masked(caplog: pytest.LogCaptureFixture) -> None:
    install_redaction(SECRET, "pw")
    logging.getLogger("aiohttp.client").warning("Authorization: Basic a2FubmVsOnNlY3JldA== password=pw&to=992901234567")
    assert "a2FubmVsOnNlY3JldA" not in caplog.text and "password=pw" not in caplog.text
    assert "992901234567" not in caplog.text
    assert "pw" not in REDACTOR.secrets  # too short to mask everywhere: the URL patterns cover it
