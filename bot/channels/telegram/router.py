"""Telegram handlers: commands, the language menu, text turns and polite answers to everything else."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware, Router
from aiogram.filters import Command, CommandStart
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    TelegramObject,
    Update,
)

from bot.pipeline import Inbound, Outcome, Pipeline
from bot.texts import LANGUAGE_NAMES, LANGUAGES, T, text
from inference.queue import RequestQueue
from soro.settings import Settings

CHANNEL = "telegram"


class UpdateKeyMiddleware(BaseMiddleware):
    """Hands each handler the update's id, the key under which a retried update is recognised."""

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        if isinstance(event, Update):
            data["update_key"] = str(event.update_id)
        return await handler(event, data)


def language_keyboard() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text=LANGUAGE_NAMES[code], callback_data=f"lang:{code}") for code in LANGUAGES]
        ]
    )


# Filters as coroutines: aiogram runs a plain function or a magic filter (``F.text…``) in a thread, a thread
# hop for every update.
async def is_command(message: Message) -> bool:
    return bool(message.text and message.text.startswith("/"))


async def is_language_choice(query: CallbackQuery) -> bool:
    return bool(query.data and query.data.startswith("lang:"))


def build_router() -> Router:
    router = Router(name="telegram")

    async def first_time(pipeline: Pipeline, update_key: str) -> bool:
        return await pipeline.first_time(CHANNEL, update_key)

    @router.message(CommandStart())
    async def start(message: Message, pipeline: Pipeline, update_key: str) -> None:
        if not await first_time(pipeline, update_key):
            return
        language = await pipeline.language(CHANNEL, str(message.chat.id))
        await message.answer(text(T.GREETING, language))
        await message.answer(text(T.CHOOSE_LANGUAGE, language), reply_markup=language_keyboard())

    @router.message(Command("help"))
    async def help_(message: Message, pipeline: Pipeline, update_key: str) -> None:
        if await first_time(pipeline, update_key):
            await message.answer(text(T.HELP, await pipeline.language(CHANNEL, str(message.chat.id))))

    @router.message(Command("new"))
    async def new(message: Message, pipeline: Pipeline, update_key: str) -> None:
        if await first_time(pipeline, update_key):
            language = await pipeline.new_conversation(CHANNEL, str(message.chat.id))
            await message.answer(text(T.NEW_CONVERSATION, language))

    @router.message(Command("language"))
    async def language(message: Message, pipeline: Pipeline, update_key: str) -> None:
        if await first_time(pipeline, update_key):
            current = await pipeline.language(CHANNEL, str(message.chat.id))
            await message.answer(text(T.CHOOSE_LANGUAGE, current), reply_markup=language_keyboard())

    @router.message(Command("forget"))
    async def forget(message: Message, pipeline: Pipeline, update_key: str) -> None:
        if await first_time(pipeline, update_key):
            language = await pipeline.forget(CHANNEL, str(message.chat.id))
            await message.answer(text(T.FORGOTTEN, language))

    @router.message(Command("stats"))
    async def stats(
        message: Message, pipeline: Pipeline, queue: RequestQueue, settings: Settings, update_key: str
    ) -> None:
        if not await first_time(pipeline, update_key):
            return
        language = await pipeline.language(CHANNEL, str(message.chat.id))
        if message.from_user is None or message.from_user.id not in settings.operator_ids:
            await message.answer(text(T.NOT_OPERATOR, language))
            return
        await message.answer(text(T.STATS, language, backlog=await queue.backlog()))

    @router.message(is_command)
    async def unknown_command(message: Message, pipeline: Pipeline, update_key: str) -> None:
        if await first_time(pipeline, update_key):
            await message.answer(text(T.UNKNOWN_COMMAND, await pipeline.language(CHANNEL, str(message.chat.id))))

    @router.callback_query(is_language_choice)
    async def choose_language(query: CallbackQuery, pipeline: Pipeline) -> None:
        code = (query.data or "").removeprefix("lang:")
        if code not in LANGUAGES or query.message is None:
            await query.answer()
            return
        await pipeline.set_language(CHANNEL, str(query.message.chat.id), code)
        await query.answer(text(T.LANGUAGE_SET, code))
        await query.bot.send_message(query.message.chat.id, text(T.HELP, code))  # type: ignore[union-attr]

    @router.message()
    async def turn(message: Message, pipeline: Pipeline, update_key: str) -> None:
        # A photo's caption is not taken as a question: the model would answer without seeing the photo.
        accepted = await pipeline.accept(
            Inbound(channel=CHANNEL, address=str(message.chat.id), text=message.text, dedup_key=update_key)
        )
        if accepted.outcome is Outcome.REJECTED and accepted.notice:
            await message.answer(accepted.notice)

    return router
