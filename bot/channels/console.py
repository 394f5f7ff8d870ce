"""``soro chat``: a console channel through the same pipeline, queue, workers and delivery as Telegram.

Operators use it to test a deployment from a shell. On a terminal it is interactive and streams answers as
they are generated; with stdin from a pipe or file it answers each line in turn and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import uuid
from typing import TextIO

from bot.channels.base import Sent
from bot.delivery import DeliveryLoop
from bot.pipeline import Inbound, Outcome, Target, TurnOptions
from bot.routing import served_models
from bot.services import Services
from bot.texts import LANGUAGES, T, text
from soro.settings import Settings

CHANNEL = "console"
PROMPT = "› "


class ConsoleSender:
    channel = CHANNEL

    def __init__(self, out: TextIO, stream_partials: bool) -> None:
        self.out = out
        self.stream_partials = stream_partials
        self.shown: dict[str, str] = {}  # request id → the preview text already printed
        self.finals: dict[str, asyncio.Future[str]] = {}

    def expect(self, request_id: str) -> asyncio.Future[str]:
        return self.finals.setdefault(request_id, asyncio.get_running_loop().create_future())

    async def send_partial(self, target: Target, text: str) -> bool:
        if not self.stream_partials:
            return False
        shown = self.shown.get(target.request_id)
        if shown is None:
            self.out.write("Соро: ")
            shown = ""
        if not text.startswith(shown):  # a regenerated answer: start its line again
            self.out.write("\nСоро: ")
            shown = ""
        self.out.write(text[len(shown) :])
        self.out.flush()
        self.shown[target.request_id] = text
        return True

    async def send_final(self, target: Target, text: str) -> Sent:
        shown = self.shown.pop(target.request_id, None)
        if shown is not None and text.startswith(shown):
            self.out.write(text[len(shown) :] + "\n")
        else:
            self.out.write(f"Соро: {text}\n")
        self.out.flush()
        self.expect(target.request_id).set_result(text)
        return Sent(text)


class ConsoleChat:
    """One console conversation over already-built services (``soro chat`` and ``soro demo`` share it)."""

    def __init__(self, services: Services, user: str, stdin: TextIO, out: TextIO, reply_stream: str) -> None:
        self.services = services
        self.user = user
        self.stdin = stdin
        self.out = out
        self.interactive = stdin.isatty()
        self.sender = ConsoleSender(out, stream_partials=self.interactive)
        self.delivery = DeliveryLoop(
            services.settings,
            services.pipeline,
            services.queue,
            {CHANNEL: self.sender},
            services.metrics,
            streams={reply_stream: CHANNEL},
        )
        self.reply_stream = reply_stream
        services.metrics.prime(channels=[CHANNEL], models=served_models(services.settings))

    async def run(self) -> int:
        stop = asyncio.Event()
        delivery = asyncio.create_task(self.delivery.run(stop))
        try:
            while (line := await self._read_line()) is not None:
                line = line.strip()
                if not line:
                    continue
                if line in ("/quit", "/exit"):
                    break
                await self.say(line)
        finally:
            stop.set()
            await delivery
            await self.services.redis.delete(self.reply_stream)
        return 0

    async def _read_line(self) -> str | None:
        if self.interactive:
            self.out.write(PROMPT)
            self.out.flush()
        line = await asyncio.to_thread(self.stdin.readline)
        return line if line else None

    async def say(self, line: str) -> str:
        """Send one line as the user and return what was printed in reply."""
        pipeline = self.services.pipeline
        if line.startswith("/"):
            reply = await self._command(line)
        else:
            accepted = await pipeline.accept(Inbound(CHANNEL, self.user, line))
            if accepted.outcome is Outcome.QUEUED and accepted.request_id:
                return await self.sender.expect(accepted.request_id)
            reply = accepted.notice or ""
        if reply:
            self.out.write(f"Соро: {reply}\n")
            self.out.flush()
        return reply

    async def _command(self, line: str) -> str:
        pipeline = self.services.pipeline
        command, _, argument = line.partition(" ")
        language = await pipeline.language(CHANNEL, self.user)
        if command == "/new":
            return text(T.NEW_CONVERSATION, await pipeline.new_conversation(CHANNEL, self.user))
        if command == "/help":
            return text(T.HELP, language)
        if command == "/forget":
            return text(T.FORGOTTEN, await pipeline.forget(CHANNEL, self.user))
        if command == "/language" and argument.strip() in LANGUAGES:
            await pipeline.set_language(CHANNEL, self.user, argument.strip())
            return text(T.LANGUAGE_SET, argument.strip())
        if command == "/language":
            return f"{text(T.CHOOSE_LANGUAGE, language)} {', '.join(LANGUAGES)} (/language tg)"
        return text(T.UNKNOWN_COMMAND, language)


def console_services(settings: Settings) -> tuple[Services, str]:
    """Services whose console turns answer into a reply stream of this session alone."""
    reply_stream = f"{settings.stream_prefix}:replies:{CHANNEL}:{uuid.uuid4().hex}"
    options = {CHANNEL: TurnOptions(max_tokens=settings.llm_max_tokens, reply_stream=reply_stream)}
    return Services.create(settings, options), reply_stream


async def run_chat(settings: Settings, user: str = "console", stdin: TextIO | None = None) -> int:
    services, reply_stream = console_services(settings)
    try:
        chat = ConsoleChat(services, user, stdin or sys.stdin, sys.stdout, reply_stream)
        with contextlib.suppress(KeyboardInterrupt):
            return await chat.run()
        return 0
    finally:
        await services.close()
