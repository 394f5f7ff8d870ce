"""SMS ratings and forgetting, through a real Kannel and its fake SMSC, on real SQLite and Redis."""

from __future__ import annotations

from sqlalchemy import select

from bot.store.models import Feedback, Message, Request, User, Vote
from bot.texts import T, text
from tests.bot.channels.sms.conftest import SmsStack, new_number
from tests.support.stack import eventually


async def answered(stack: SmsStack, number: str, question: str, seen: int) -> None:
    """``question`` from ``number``, answered by "the model" and delivered; ``seen``: MO taken so far, after it."""
    await stack.kannel.inject(number, question)
    await eventually(lambda: _requests(stack, seen), 15)
    async with stack.services.sessions() as session:
        request = (await session.scalars(select(Request).order_by(Request.received_at.desc()))).first()
    assert request is not None
    before = len(stack.kannel.received(number))
    await stack.publish_answer(request, "Душанбе пойтахти Тоҷикистон аст.")
    await stack.answers(number, before + 1)
    await eventually(lambda: _stored(stack, request.id), 10)


async def votes(stack: SmsStack) -> list[tuple[Vote, str]]:
    return [(f.vote, f.voter) for f in await stack.rows(Feedback)]


async def test_a_rating_right_after_an_answer_is_stored_and_changed(sms_stack: SmsStack) -> None:
    number = new_number()
    await answered(sms_stack, number, "Пойтахти Тоҷикистон?", 1)
    await sms_stack.kannel.inject(number, "1", kind="text")
    thanks = (await sms_stack.answers(number, 2))[1]
    assert thanks.text == text(T.FEEDBACK_THANKS, "tg")
    await eventually(lambda: _votes_are(sms_stack, [(Vote.UP, number)]), 10)
    await sms_stack.kannel.inject(number, "НЕ")  # changed its mind
    await sms_stack.answers(number, 3)
    await eventually(lambda: _votes_are(sms_stack, [(Vote.DOWN, number)]), 10)
    # After a question, "1" is a question too: nothing is rated, a turn goes to the model.
    other = new_number()
    await sms_stack.kannel.inject(other, "1", kind="text")
    await eventually(lambda: _requests(sms_stack, 2), 15)
    assert await votes(sms_stack) == [(Vote.DOWN, number)]


async def test_forget_deletes_the_numbers_data(sms_stack: SmsStack) -> None:
    number = new_number()
    await answered(sms_stack, number, "Пойтахти Тоҷикистон?", 1)
    await sms_stack.kannel.inject(number, "ФАРОМӮШ")
    goodbye = (await sms_stack.answers(number, 2))[1]
    assert goodbye.text == text(T.SMS_FORGOTTEN, "tg")
    async with sms_stack.services.sessions() as session:
        assert (await session.scalars(select(User).where(User.address == number))).all() == []
    assert await sms_stack.rows(Message) == [] and await sms_stack.rows(Request) == []


async def _requests(stack: SmsStack, count: int) -> bool:
    return len(await stack.rows(Request)) >= count


async def _stored(stack: SmsStack, request_id: str) -> bool:
    return any(m.answer_of == request_id for m in await stack.rows(Message))


async def _votes_are(stack: SmsStack, expected: list[tuple[Vote, str]]) -> bool:
    return await votes(stack) == expected
