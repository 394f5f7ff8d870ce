"""Bot API calls as JSON bodies in raw UTF-8.

aiogram's own session form-encodes every call, and form encoding sends each Cyrillic letter as six bytes
(``%D2%B3``), three times its UTF-8. The Bot API takes ``application/json`` as well: a call without files goes
as compact JSON with its letters as they are, without the headers the Bot API does not read (every call pays
its headers on the uplink, on 2G a few hundred milliseconds a kilobyte); a call that uploads files keeps
aiogram's multipart body.
"""

from __future__ import annotations

import json
from typing import Any, cast

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.exceptions import TelegramNetworkError
from aiogram.methods import TelegramMethod
from aiogram.methods.base import TelegramType
from aiohttp import ClientError, ClientSession, ClientTimeout
from aiohttp.hdrs import USER_AGENT

# Responses come back over the same thin link, so they stay compressed; gzip is what Telegram answers with.
JSON_HEADERS = {"Content-Type": "application/json", "Accept-Encoding": "gzip"}
# The Bot API reads neither; aiogram sets its User-Agent on the session, aiohttp adds Accept to every request.
SKIPPED_HEADERS = ("User-Agent", "Accept")


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class JsonSession(AiohttpSession):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(json_dumps=dumps, **kwargs)

    async def create_session(self) -> ClientSession:
        session = await super().create_session()
        session.headers.pop(USER_AGENT, None)
        return session

    def json_body(self, bot: Bot, method: TelegramMethod[TelegramType]) -> bytes | None:
        """The call as a JSON body; None when it carries files (those go as multipart)."""
        files: dict[str, Any] = {}
        payload = {}
        for key, value in method.model_dump(warnings=False).items():
            prepared = self.prepare_value(value, bot=bot, files=files, _dumps_json=False)
            if prepared is not None and prepared != "":
                payload[key] = prepared
        return None if files else dumps(payload).encode()

    async def make_request(
        self, bot: Bot, method: TelegramMethod[TelegramType], timeout: int | None = None
    ) -> TelegramType:
        body = self.json_body(bot, method)
        if body is None:
            return await super().make_request(bot, method, timeout)
        session = await self.create_session()
        url = self.api.api_url(token=bot.token, method=method.__api_method__)
        try:
            limit = ClientTimeout(total=self.timeout if timeout is None else timeout)
            async with session.post(
                url, data=body, headers=JSON_HEADERS, skip_auto_headers=SKIPPED_HEADERS, timeout=limit
            ) as resp:
                raw_result = await resp.text()
        except TimeoutError as e:
            raise TelegramNetworkError(method=method, message="Request timeout error") from e
        except ClientError as e:
            raise TelegramNetworkError(method=method, message=f"{type(e).__name__}: {e}") from e
        response = self.check_response(bot=bot, method=method, status_code=resp.status, content=raw_result)
        return cast(TelegramType, response.result)
