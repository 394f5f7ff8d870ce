"""Telegram handlers: commands, the language menu, text turns and polite answers to everything else."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiogram import BaseMiddleware, Router
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.types import (
    CallbackQuery,
    ForceReply,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    TelegramObject,
    Update,
)

from bot.access import Rule, parse_address
from bot.channels.telegram.sender import FEEDBACK_PREFIX, feedback_vote
from bot.feedback import Change
from bot.pipeline import Inbound, Outcome, Pipeline
from bot.reading import LATIN, SCRIPTS
from bot.stats import percent, seconds, traffic_since
from bot.store.models import Vote
from bot.texts import LANGUAGE_NAMES, LANGUAGES, SCRIPT_NAMES, T, text
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


class AccessMiddleware(BaseMiddleware):
    """Blocked users and those outside a pilot's allow-list reach no handler (``/forget`` excepted): one polite
    notice, then silence."""

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        if isinstance(event, Message) and not (event.text or "").startswith("/forget"):
            pipeline: Pipeline = data["pipeline"]
            refused = await pipeline.refusal(CHANNEL, str(event.chat.id))
            if refused is not None:
                if refused.notice:
                    await event.answer(refused.notice)
                return None
        return await handler(event, data)


async def take_turn(
    pipeline: Pipeline,
    chat_id: int,
    message_text: str | None,
    update_key: str,
    answer: Callable[[str], Awaitable[object]],
) -> None:
    """The chat's message (None: one without text) into its conversation; the notice when it is refused."""
    accepted = await pipeline.accept(
        Inbound(channel=CHANNEL, address=str(chat_id), text=message_text, dedup_key=update_key)
    )
    if accepted.outcome is Outcome.REJECTED and accepted.notice:
        await answer(accepted.notice)


# What a plain text message may hold. Anything else (a reply, which may comment a 👎; a forum topic; a business
# chat; a forward) goes through the dispatcher.
_PLAIN_MESSAGE_KEYS = frozenset({"message_id", "from", "chat", "date", "text", "entities", "link_preview_options"})


def plain_text(update: Any) -> tuple[int, str] | None:
    """(chat id, text) of an update that only the turn handler takes, and takes as it is: a text message, no
    command, no reply. Nearly every update is one; aiogram's model of it and its way through the dispatcher
    cost more CPU than storing and queueing it, so the webhook hands these to ``take_turn`` directly."""
    if not isinstance(update, dict) or len(update) != 2 or type(update.get("update_id")) is not int:
        return None
    message = update.get("message")
    if not isinstance(message, dict) or not _PLAIN_MESSAGE_KEYS.issuperset(message):
        return None
    chat, message_text = message.get("chat"), message.get("text")
    if (
        not isinstance(chat, dict)
        or type(chat.get("id")) is not int
        or not isinstance(chat.get("type"), str)
        or type(message.get("message_id")) is not int
        or type(message.get("date")) is not int
        or not isinstance(message_text, str)
        or not message_text
        or message_text.startswith("/")
    ):
        return None
    return chat["id"], message_text


def language_keyboard() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text=LANGUAGE_NAMES[code], callback_data=f"lang:{code}") for code in LANGUAGES],
            [InlineKeyboardButton(text=SCRIPT_NAMES[code], callback_data=f"script:{code}") for code in SCRIPTS],
        ]
    )


# Filters as coroutines: aiogram runs a plain function or a magic filter (``F.text…``) in a thread, a thread
# hop for every update.
async def is_command(message: Message) -> bool:
    return bool(message.text and message.text.startswith("/"))


async def is_language_choice(query: CallbackQuery) -> bool:
    return bool(query.data and query.data.startswith("lang:"))


async def is_vote(query: CallbackQuery) -> bool:
    return bool(query.data and query.data.startswith(f"{FEEDBACK_PREFIX}:"))


async def is_script_choice(query: CallbackQuery) -> bool:
    return bool(query.data and query.data.startswith("script:"))


def build_router() -> Router:
    """Commands in a router of their own behind one cheap filter: a plain text message (nearly every update)
    passes that one check, not one per command, on its way to the turn handler."""
    router = Router(name="telegram")
    router.message.outer_middleware(AccessMiddleware())  # around the routers below as well
    commands = Router(name="commands")
    commands.message.filter(is_command)
    router.include_router(commands)
    conversation = Router(name="conversation")
    router.include_router(conversation)

    async def first_time(pipeline: Pipeline, update_key: str) -> bool:
        return await pipeline.first_time(CHANNEL, update_key)

    async def operator_language(message: Message, pipeline: Pipeline, settings: Settings) -> str | None:
        """The operator's language, or None (and a polite refusal) when the sender is no operator."""
        language = await pipeline.language(CHANNEL, str(message.chat.id))
        if message.from_user is None or message.from_user.id not in settings.operator_ids:
            await message.answer(text(T.NOT_OPERATOR, language))
            return None
        return language

    @commands.message(CommandStart())
    async def start(message: Message, pipeline: Pipeline, update_key: str) -> None:
        if not await first_time(pipeline, update_key):
            return
        language = await pipeline.language(CHANNEL, str(message.chat.id))
        await message.answer(text(T.GREETING, language))
        await message.answer(text(T.CHOOSE_LANGUAGE, language), reply_markup=language_keyboard())

    @commands.message(Command("help"))
    async def help_(message: Message, pipeline: Pipeline, update_key: str) -> None:
        if await first_time(pipeline, update_key):
            await message.answer(text(T.HELP, await pipeline.language(CHANNEL, str(message.chat.id))))

    @commands.message(Command("new"))
    async def new(message: Message, pipeline: Pipeline, update_key: str) -> None:
        if await first_time(pipeline, update_key):
            language = await pipeline.new_conversation(CHANNEL, str(message.chat.id))
            await message.answer(text(T.NEW_CONVERSATION, language))

    @commands.message(Command("language"))
    async def language(message: Message, pipeline: Pipeline, update_key: str) -> None:
        if await first_time(pipeline, update_key):
            current = await pipeline.language(CHANNEL, str(message.chat.id))
            await message.answer(text(T.CHOOSE_LANGUAGE, current), reply_markup=language_keyboard())

    @commands.message(Command("forget"))
    async def forget(message: Message, pipeline: Pipeline, update_key: str) -> None:
        if await first_time(pipeline, update_key):
            language = await pipeline.forget(CHANNEL, str(message.chat.id))
            await message.answer(text(T.FORGOTTEN, language))

    @commands.message(Command("stats"))
    async def stats(
        message: Message, pipeline: Pipeline, queue: RequestQueue, settings: Settings, update_key: str
    ) -> None:
        if not await first_time(pipeline, update_key):
            return
        language = await operator_language(message, pipeline, settings)
        if language is None:
            return
        midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        today = await traffic_since(pipeline.sessions, midnight)
        lines = [
            text(
                T.STATS,
                language,
                messages=today.messages,
                answers=today.answers,
                notices=today.notices,
                median=seconds(today.median_latency),
                backlog=await queue.backlog(),
            )
        ]
        for model in today.models:
            lines.append(
                text(
                    T.STATS_MODEL,
                    language,
                    model=model.model,
                    answers=model.answers,
                    notices=model.notices,
                    up=model.up,
                    down=model.down,
                    share=percent(model.up_share),
                    latency=seconds(model.median_latency),
                )
            )
        await message.answer("\n".join(lines))

    access_commands: dict[str, tuple[Rule, bool, T]] = {
        "block": ("blocked", True, T.BLOCK_DONE),
        "unblock": ("blocked", False, T.UNBLOCK_DONE),
        "allow": ("allowed", True, T.ALLOW_DONE),
        "disallow": ("allowed", False, T.DISALLOW_DONE),
    }

    @commands.message(Command(*access_commands))
    async def access(
        message: Message, command: CommandObject, pipeline: Pipeline, settings: Settings, update_key: str
    ) -> None:
        if not await first_time(pipeline, update_key):
            return
        language = await operator_language(message, pipeline, settings)
        if language is None:
            return
        target = parse_address(command.args or "")
        if target is None:
            await message.answer(text(T.ACCESS_USAGE, language))
            return
        rule, value, done = access_commands[command.command]
        by = str(message.from_user.id) if message.from_user else ""
        await pipeline.access.set_rule(*target, rule, value, by=by)
        await message.answer(text(done, language, who=target[1]))

    @commands.message()  # any other command
    async def unknown_command(message: Message, pipeline: Pipeline, update_key: str) -> None:
        if await first_time(pipeline, update_key):
            await message.answer(text(T.UNKNOWN_COMMAND, await pipeline.language(CHANNEL, str(message.chat.id))))

    @conversation.callback_query(is_language_choice)
    async def choose_language(query: CallbackQuery, pipeline: Pipeline) -> None:
        code = (query.data or "").removeprefix("lang:")
        if code not in LANGUAGES or query.message is None:
            await query.answer()
            return
        await pipeline.set_language(CHANNEL, str(query.message.chat.id), code)
        await query.answer(text(T.LANGUAGE_SET, code))
        await query.bot.send_message(query.message.chat.id, text(T.HELP, code))  # type: ignore[union-attr]

    @conversation.callback_query(is_vote)
    async def vote(query: CallbackQuery, pipeline: Pipeline) -> None:
        choice, request_id = feedback_vote(query.data or "")
        if choice not in (Vote.UP, Vote.DOWN) or not request_id:
            await query.answer()
            return
        voter = str(query.from_user.id)  # in a group, whoever tapped
        rated = await pipeline.feedback.rate(request_id, Vote(choice), voter)
        if rated is None:
            chat = str(query.message.chat.id) if query.message is not None else voter
            await query.answer(text(T.FEEDBACK_GONE, await pipeline.language(CHANNEL, chat)))
            return
        await query.answer(
            text(T.FEEDBACK_CHANGED if rated.change is Change.CHANGED else T.FEEDBACK_THANKS, rated.language)
        )
        if rated.vote is Vote.DOWN and rated.change is not Change.SAME and query.message is not None:
            chat_id = query.message.chat.id
            # Not selective: in a group it would reach nobody (the question mentions and replies to no one);
            # only the voter's reply becomes the comment.
            asked = await query.bot.send_message(  # type: ignore[union-attr]
                chat_id, text(T.FEEDBACK_WHY, rated.language), reply_markup=ForceReply()
            )
            await pipeline.feedback.asked_why(chat_id, asked.message_id, rated.feedback_id, voter)

    @conversation.callback_query(is_script_choice)
    async def choose_script(query: CallbackQuery, pipeline: Pipeline) -> None:
        code = (query.data or "").removeprefix("script:")
        if code not in SCRIPTS or query.message is None:
            await query.answer()
            return
        chat_id = str(query.message.chat.id)
        await pipeline.set_script(CHANNEL, chat_id, code)
        language = await pipeline.language(CHANNEL, chat_id)
        await query.answer(text(T.SCRIPT_LATIN if code == LATIN else T.SCRIPT_CYRILLIC, language))

    @conversation.message()
    async def turn(message: Message, pipeline: Pipeline, update_key: str) -> None:
        reply = message.reply_to_message
        if (
            reply is not None
            and message.text
            and message.from_user is not None
            and await pipeline.feedback.comment(
                message.chat.id, reply.message_id, str(message.from_user.id), message.text
            )
        ):
            if await first_time(pipeline, update_key):
                await message.answer(
                    text(T.FEEDBACK_COMMENT_THANKS, await pipeline.language(CHANNEL, str(message.chat.id)))
                )
            return
        # A photo's caption is not taken as a question: the model would answer without seeing the photo.
        await take_turn(pipeline, message.chat.id, message.text, update_key, message.answer)

    return router
