"""Bot API calls leave as raw UTF-8 JSON, and uploads still as multipart, accepted as Telegram accepts them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import quote

import pytest
from aiogram import Bot
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import BufferedInputFile, InlineKeyboardButton, InlineKeyboardMarkup

from bot.channels.telegram.session import JsonSession
from tests.support.telegram_api import BotApiStandIn

TEXT = "Салом! Дарёи Панҷ дар куҷост? Ҷавоби кӯтоҳ, лутфан."


@pytest.fixture
async def bot(api: BotApiStandIn) -> AsyncIterator[Bot]:
    session = JsonSession(api=TelegramAPIServer.from_base(api.base))
    bot = Bot(api.token, session=session)
    yield bot
    await bot.session.close()


async def test_a_text_goes_as_utf8_json_of_about_its_own_size(api: BotApiStandIn, bot: Bot) -> None:
    keyboard = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="Тоҷикӣ", callback_data="lang:tg")]])
    message = await bot.send_message(1001, TEXT, reply_markup=keyboard)

    assert message.text == TEXT
    (call,) = api.sent("sendMessage")
    assert call.content_type == "application/json"
    assert call.params["text"] == TEXT
    assert call.params["reply_markup"]["inline_keyboard"][0][0]["text"] == "Тоҷикӣ"
    utf8 = len(TEXT.encode())
    # Form encoding would have sent the text alone in about three times its UTF-8 bytes.
    assert len(quote(TEXT).encode()) > 2.5 * utf8
    assert call.body_bytes < utf8 + 200


async def test_a_call_carries_only_the_headers_the_bot_api_reads(api: BotApiStandIn, bot: Bot) -> None:
    await bot.send_message(1001, TEXT)
    await bot.send_message(1001, TEXT)  # the session's second request: nothing added once it is open

    for call in api.sent("sendMessage"):
        # Every header is paid for on the uplink of every call; responses still come back compressed.
        assert sorted(call.headers) == ["Accept-Encoding", "Content-Length", "Content-Type", "Host"]
        assert call.headers["Accept-Encoding"] == "gzip"


async def test_a_file_still_goes_as_multipart(api: BotApiStandIn, bot: Bot) -> None:
    assert await bot.set_chat_photo(-1001, BufferedInputFile(b"\x89PNG", filename="soro.png"))

    (call,) = api.sent("setChatPhoto")
    assert call.content_type == "multipart/form-data"
    assert int(call.params["chat_id"]) == -1001
    assert call.params["photo"] == "attach://" + next(k for k in call.params if k not in ("chat_id", "photo"))
