"""Log lines on the SMS paths carry no secret, no whole phone number and no message text, whoever writes them.

Our own lines are written that way; this filter is for the lines we do not write: aiohttp's server logs the
request line of a request it refuses (a get-url too long for it carries the secret, the sender and the text),
and exceptions may quote a URL with the sendsms password in it. It is installed on the loggers that write
them (a logger's filters see only its own records, so each is named).
"""

from __future__ import annotations

import logging
import re

from bot.pipeline import redact

# The loggers that can see a request line or a gateway URL: aiohttp's (see aiohttp/log.py) and ours.
LOGGERS = (
    "aiohttp.access",
    "aiohttp.client",
    "aiohttp.internal",
    "aiohttp.server",
    "aiohttp.web",
    "bot.channels.sms.channel",
    "bot.channels.sms.dispatch",
    "bot.channels.sms.inbox",
    "bot.channels.sms.kannel",
    "soro.outage",
)
MASK = "…"
# Query parameters whose values are private: the secret, passwords, the message and the numbers.
_PRIVATE_PARAMETER = re.compile(r"(?i)\b(secret|password|text|from|to|username|dlr-url)=[^&\s'\"]*")
# Credentials in a URL (http://kannel:secret@bot) and in a header.
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s'\"]*@")
_BASIC = re.compile(r"(?i)\b(basic|bearer)\s+[A-Za-z0-9+/=._-]+")
# A phone number, as digits or percent-encoded (%2B992…): 8 to 15 digits standing alone.
_PHONE = re.compile(r"(?<![\w.])(?:\+|%2B)?\d{8,15}(?![\w.])", re.IGNORECASE)


class Redactor(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        text = _USERINFO.sub(rf"\1{MASK}@", text)
        text = _BASIC.sub(rf"\1 {MASK}", text)
        text = _PRIVATE_PARAMETER.sub(rf"\1={MASK}", text)
        return _PHONE.sub(lambda match: redact(match.group()), text)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = self.redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info:
            # Formatters print exc_text when it is set: the traceback is formatted once, here, redacted.
            record.exc_text = record.exc_text or logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


REDACTOR = Redactor()


def install_redaction(*secrets: str) -> Redactor:
    """Hide ``secrets`` (and the private parts of every URL) in the lines of ``LOGGERS``."""
    # A short password would mask common words; the patterns above still hide it where URLs carry it.
    REDACTOR.secrets.update(secret for secret in secrets if len(secret) >= 8)
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if REDACTOR not in logger.filters:
            logger.addFilter(REDACTOR)
    return REDACTOR
