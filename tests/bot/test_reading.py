"""Tajik typed without its letters reaches the model restored; the answer's script follows the user."""

from __future__ import annotations

from sqlalchemy import select

from bot.pipeline import Inbound, Outcome
from bot.reading import answers_in_latin, read
from bot.services import Services
from bot.store.models import Message, User
from tests.bot.test_pipeline import queued


async def _stored(running: Services, address: str) -> tuple[User, list[Message]]:
    async with running.sessions() as session:
        user = (await session.scalars(select(User).where(User.address == address))).one()
        messages = (await session.scalars(select(Message).order_by(Message.id))).all()
        return user, [m for m in messages]


async def test_latin_tajik_reaches_the_model_in_cyrillic_and_is_stored_as_typed_too(services: Services) -> None:
    accepted = await services.pipeline.accept(Inbound("telegram", "701", "Salom! Man imruz ba maktab naraftam", "r-1"))
    assert accepted.outcome is Outcome.QUEUED
    [turn] = await queued(services)
    assert turn.messages[-1].content == "Салом! Ман имрӯз ба мактаб нарафтам"
    user, [message] = await _stored(services, "701")
    assert message.text == "Салом! Ман имрӯз ба мактаб нарафтам"
    assert message.typed_text == "Salom! Man imruz ba maktab naraftam"
    assert user.writes_latin is True
    target = await services.pipeline.target(turn.request_id)
    assert target is not None and target.latin


async def test_russian_keyboard_tajik_is_restored_and_answered_in_cyrillic(services: Services) -> None:
    await services.pipeline.accept(Inbound("telegram", "702", "Ман имруз ба Хучанд меравам", "r-2"))
    [turn] = await queued(services)
    assert turn.messages[-1].content == "Ман имрӯз ба Хуҷанд меравам"
    _user, [message] = await _stored(services, "702")
    assert message.typed_text == "Ман имруз ба Хучанд меравам"
    target = await services.pipeline.target(turn.request_id)
    assert target is not None and not target.latin


async def test_russian_is_passed_as_typed(services: Services) -> None:
    await services.pipeline.accept(Inbound("telegram", "703", "Привет, как у тебя дела?", "r-3"))
    [turn] = await queued(services)
    assert turn.messages[-1].content == "Привет, как у тебя дела?"
    user, [message] = await _stored(services, "703")
    assert message.typed_text is None and user.writes_latin is None


async def test_a_chosen_script_wins_over_the_one_the_user_writes_in(services: Services) -> None:
    await services.pipeline.set_script("telegram", "704", "cyrl")
    await services.pipeline.accept(Inbound("telegram", "704", "Rahmat, fahmidam", "r-4"))
    [turn] = await queued(services)
    target = await services.pipeline.target(turn.request_id)
    assert target is not None and not target.latin


def test_script_rules() -> None:
    assert read("Салом, чӣ хел?").typed is None  # proper Tajik passes unchanged
    assert read("Hello, how are you?").latin is None
    assert answers_in_latin(None, True) and not answers_in_latin(None, False)
    assert answers_in_latin("latn", False) and not answers_in_latin("cyrl", True)
    assert not answers_in_latin("latn", None)  # a Russian or English message is not transliterated
