"""A phone → Kannel → bot → Redis → worker → real vLLM → bot → Kannel → the phone, with the report back."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.store.models import DeliveryState, Message, OutboundSms, Request, RequestState, Role
from inference.queue import TurnRequest
from tajik.sms import SmsEncoding, char_budget, encoding_of
from tests.bot.channels.sms.conftest import SmsStack, SmsStackFactory, new_number
from tests.support.stack import eventually
from tests.support.vllm import ServedModel

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

QUESTION = "Салом! Пойтахти Тоҷикистон кадом шаҳр аст?"
FOLLOW_UP = "Боз дар бораи он нақл кунед."


async def answered(stack: SmsStack) -> list[Message]:
    async with stack.services.sessions() as session:
        rows = await session.scalars(select(Message).where(Message.role == Role.ASSISTANT).order_by(Message.id))
        return list(rows.all())


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, sqlite_url: str) -> str:
    """The embedded default and the production database."""
    return str(request.getfixturevalue("postgres_url")) if request.param == "postgresql" else sqlite_url


async def test_a_tajik_sms_gets_a_model_answer_as_ucs2_within_the_budget_and_its_report_is_recorded(
    make_sms_stack: SmsStackFactory, vllm_server: ServedModel, database_url: str
) -> None:
    async with make_sms_stack(
        workers=1, llm_base_url=vllm_server.base_url, llm_model=vllm_server.model, database_url=database_url
    ) as stack:
        number = new_number()
        await stack.kannel.inject(number, QUESTION)
        [sms] = await stack.answers(number, within=90)

        [stored] = await answered(stack)
        assert sms.text == stored.text and sms.text.strip()
        assert encoding_of(stored.text) is SmsEncoding.UCS2 and sms.ucs2
        assert len(sms.parts) <= stack.settings.sms_segment_budget
        assert all(len(part.data) <= 134 for part in sms.parts)
        assert await stack.user_texts() == [QUESTION]

        async def report_recorded() -> bool:
            [answer] = await answered(stack)
            return answer.delivery is DeliveryState.DELIVERED

        await eventually(report_recorded, 30)
        [row] = await stack.rows(OutboundSms)
        assert row.state is DeliveryState.DELIVERED and stored.external_id == str(row.id)

        # The turn told the model its budget; the next turn carries the conversation so far.
        await stack.kannel.inject(number, FOLLOW_UP)
        await stack.answers(number, 2, within=90)
        async with stack.services.sessions() as session:
            turns = (await session.scalars(select(Request).order_by(Request.received_at))).all()
        assert [t.state for t in turns] == [RequestState.ANSWERED] * 2
        second = TurnRequest.from_json(turns[1].payload)
        budget = char_budget(stack.settings.sms_segment_budget)
        assert second.char_budget == budget and second.max_tokens < budget
        assert f"{budget} аломат" in second.messages[0].content
        assert [m.content for m in second.messages[1:]] == [QUESTION, stored.text, FOLLOW_UP]
