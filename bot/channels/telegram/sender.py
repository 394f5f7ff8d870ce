"""Sending answers to Telegram: streamed previews (drafts or edits) and the final message, paced and retried."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextvars
import logging
import math
import time
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar
from uuid import UUID

from aiogram import Bot
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import TelegramMethod
from aiogram.methods.base import Response, TelegramType
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot.channels.base import Sent, Undeliverable
from bot.channels.telegram.previews import AnswerStats, LinkEstimate, Preview, PreviewPolicy
from bot.channels.telegram.split import TELEGRAM_LIMIT, split_message
from bot.pacing import OutboundLimiter
from bot.pipeline import Target
from bot.store.models import Vote
from soro.metrics import BotMetrics

log = logging.getLogger(__name__)
T_ = TypeVar("T_")

# How long a call the sender did not make (a handler's reply inside a webhook request, setWebhook) may wait out
# 429s in all. Telegram holds the chat's next updates until the webhook answers, so not for long.
REPLY_PATIENCE_SECONDS = 5.0


@dataclass(frozen=True)
class CallTerms:
    """What the call being made may spend: whether its caller has paced it already, and how many seconds of
    429s it may wait out in all before the 429 is raised to the caller."""

    paced: bool = False
    patience: float = REPLY_PATIENCE_SECONDS


# A preview skips its update on a 429 instead of sleeping (the final send is what matters); a final answer waits
# out every 429, however long; any other call (a handler's reply, setWebhook) for a short while.
PREVIEW_CALL = CallTerms(paced=True, patience=0.0)
FINAL_CALL = CallTerms(patience=math.inf)
OTHER_CALL = CallTerms()
_terms: contextvars.ContextVar[CallTerms] = contextvars.ContextVar("soro_call_terms", default=OTHER_CALL)


class ApiMiddleware(BaseRequestMiddleware):
    """Every Bot API call: paced (unless its caller paced it), 429s waited out within the call's patience,
    timed, its errors and bytes counted. The one place a 429 is waited out."""

    def __init__(self, limiter: OutboundLimiter, metrics: BotMetrics, link: LinkEstimate) -> None:
        self.limiter = limiter
        self.metrics = metrics
        self.link = link

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        terms = _terms.get()
        patience = terms.patience
        paced = terms.paced
        chat_id = getattr(method, "chat_id", None)
        # Whatever lands in a chat counts against its limits, buttons added to a message too.
        counted = chat_id is not None or isinstance(getattr(method, "text", None), str)
        while True:
            if counted and not paced:
                await self.limiter.acquire(chat_id)
            paced = False  # a call made again after a 429 takes its turn again
            try:
                return await self._call(make_request, bot, method)
            except TelegramRetryAfter as exc:
                if exc.retry_after > patience:
                    raise
                patience -= exc.retry_after
                await asyncio.sleep(exc.retry_after)

    async def _call(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        name = method.__api_method__
        text = getattr(method, "text", None)
        started = time.monotonic()
        try:
            response = await make_request(bot, method)
        except TelegramRetryAfter:
            self.metrics.telegram_api_errors.labels(name, "429").inc()
            self.link.saw_retry_after(time.monotonic())
            raise
        except TelegramNetworkError:
            self.metrics.telegram_api_errors.labels(name, "network").inc()
            raise
        except TelegramAPIError as exc:
            code = getattr(exc, "status_code", None) or type(exc).__name__
            self.metrics.telegram_api_errors.labels(name, str(code)).inc()
            raise
        finally:
            elapsed = time.monotonic() - started
            self.metrics.telegram_api_latency.labels(name).observe(elapsed)
        self.link.observe_rtt(elapsed)
        if isinstance(text, str):
            self.metrics.telegram_bytes_sent.labels(name).inc(len(text.encode()))
        return response


FEEDBACK_PREFIX = "fb"
# Callback data rides on every final answer's call, twice. A request id that is a UUID goes as its 16 bytes in
# base64url after one letter for the vote: fb:u<22 characters>, 26 bytes where fb:up:<uuid> took 42.
_VOTE_LETTERS = {Vote.UP: "u", Vote.DOWN: "d"}
_LETTER_VOTES = {letter: vote for vote, letter in _VOTE_LETTERS.items()}
_UUID_CHARS = 22


def feedback_data(request_id: str, vote: Vote) -> str:
    """A feedback button's callback data: short for a UUID, the long form for any other id."""
    packed = _packed_uuid(request_id)
    if packed is None:
        return f"{FEEDBACK_PREFIX}:{vote.value}:{request_id}"
    return f"{FEEDBACK_PREFIX}:{_VOTE_LETTERS[vote]}{packed}"


def _packed_uuid(request_id: str) -> str | None:
    try:
        uuid = UUID(request_id)
    except ValueError:
        return None
    if str(uuid) != request_id:  # decoding gives the canonical form back: the vote must find this very id
        return None
    return base64.urlsafe_b64encode(uuid.bytes).decode().rstrip("=")


def feedback_vote(data: str) -> tuple[str, str]:
    """(vote, request id) of a feedback button's callback data, short or long form; ("", "") if it is neither.

    The long form, fb:up:<request id>, stays readable for the buttons already sent with it."""
    body = data.removeprefix(f"{FEEDBACK_PREFIX}:")
    if body == data:
        return "", ""
    choice, long_form, request_id = body.partition(":")
    if long_form:
        return choice, request_id
    vote, packed = _LETTER_VOTES.get(body[:1]), body[1:]
    if vote is None or len(packed) != _UUID_CHARS:
        return "", ""
    try:
        return vote.value, str(UUID(bytes=base64.urlsafe_b64decode(packed + "==")))
    except (binascii.Error, ValueError):
        return "", ""


def feedback_keyboard(request_id: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(text="👍", callback_data=feedback_data(request_id, Vote.UP)),
                InlineKeyboardButton(text="👎", callback_data=feedback_data(request_id, Vote.DOWN)),
            ]
        ]
    )


class TelegramSender:
    channel = "telegram"

    def __init__(
        self,
        bot: Bot,
        limiter: OutboundLimiter,
        metrics: BotMetrics,
        link: LinkEstimate,
        policy: PreviewPolicy | None = None,
    ) -> None:
        self.bot = bot
        self.limiter = limiter
        self.metrics = metrics
        self.link = link
        self.policy = policy or PreviewPolicy()
        self.stats = AnswerStats()
        self.previews: dict[str, Preview] = {}

    def _preview(self, request_id: str) -> Preview:
        preview = self.previews.get(request_id)
        if preview is None:
            # Drafts with one id animate into each other; the id only has to be non-zero and stable per answer.
            preview = self.previews[request_id] = Preview(draft_id=zlib.crc32(request_id.encode()) or 1)
        return preview

    async def send_partial(self, target: Target, text: str) -> bool:
        chat_id = int(target.address)
        preview = self._preview(target.request_id)
        now = time.monotonic()
        preview.saw(len(text), now)
        allowed = self.policy.allows(self.link, self.stats, preview, len(text), now)
        if not allowed or not self.limiter.try_acquire(chat_id):
            self.metrics.partial_updates.labels(self.channel, "skipped").inc()
            return False
        text = text[:TELEGRAM_LIMIT]
        token = _terms.set(PREVIEW_CALL)
        try:
            if chat_id > 0:  # private chat: drafts stream without leaving messages behind
                await self.bot.send_message_draft(chat_id=chat_id, draft_id=preview.draft_id, text=text)
            elif preview.message_id is None:
                message = await self.bot.send_message(chat_id=chat_id, text=text)
                preview.message_id = message.message_id
            else:
                await self.bot.edit_message_text(text=text, chat_id=chat_id, message_id=preview.message_id)
        except TelegramRetryAfter as exc:
            preview.paused_until = now + exc.retry_after
            self.metrics.partial_updates.labels(self.channel, "skipped").inc()
            return False
        except (TelegramNetworkError, TelegramServerError, TelegramBadRequest) as exc:
            log.info("preview update for %s skipped: %s", target.request_id, exc)
            self.metrics.partial_updates.labels(self.channel, "skipped").inc()
            return False
        finally:
            _terms.reset(token)
        preview.shown(len(text), time.monotonic())
        self.metrics.partial_updates.labels(self.channel, "sent").inc()
        return True

    async def send_final(self, target: Target, text: str) -> Sent:
        chat_id = int(target.address)
        preview = self.previews.pop(target.request_id, None)
        if preview is not None:  # a streamed answer (notices never stream): what the policy learns from
            self.stats.finished(len(text), preview.chars_per_second())
        parts = split_message(text) or [text]
        ids: list[str] = []
        for index, part in enumerate(parts):
            # The buttons ride on the last part's own call: no extra call on a slow link.
            markup = feedback_keyboard(target.request_id) if target.feedback and index == len(parts) - 1 else None
            if index == 0 and preview is not None and preview.message_id is not None:
                # Group chats: the preview message becomes the answer's first part.
                edited = await self._retrying(
                    partial(self._edit, chat_id, preview.message_id, part, markup), ignore_not_modified=True
                )
                if edited is None and markup is not None:  # the preview already showed this text: add the buttons
                    await self._retrying(
                        partial(
                            self.bot.edit_message_reply_markup,
                            chat_id=chat_id,
                            message_id=preview.message_id,
                            reply_markup=markup,
                        ),
                        ignore_not_modified=True,
                    )
                ids.append(str(preview.message_id))
            else:
                message = await self._retrying(partial(self.bot.send_message, chat_id, part, reply_markup=markup))
                ids.append(str(message.message_id))
        return Sent("\n\n".join(parts), ids)

    async def _edit(
        self, chat_id: int, message_id: int, text: str, markup: InlineKeyboardMarkup | None = None
    ) -> object:
        return await self.bot.edit_message_text(text=text, chat_id=chat_id, message_id=message_id, reply_markup=markup)

    async def _retrying(self, call: Callable[[], Awaitable[Any]], ignore_not_modified: bool = False) -> Any:
        """Make a final-answer call until it succeeds: its 429s are waited out in the middleware, network and
        server errors backed off here."""
        delay = 1.0
        token = _terms.set(FINAL_CALL)
        try:
            while True:
                try:
                    return await call()
                except (TelegramNetworkError, TelegramServerError) as exc:
                    log.warning("Bot API unavailable (%s); retrying in %.0fs", exc, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 60.0)
                except TelegramBadRequest as exc:
                    if ignore_not_modified and "not modified" in str(exc):
                        return None
                    raise Undeliverable(str(exc)) from exc
                except (TelegramForbiddenError, TelegramNotFound) as exc:
                    raise Undeliverable(str(exc)) from exc
        finally:
            _terms.reset(token)
