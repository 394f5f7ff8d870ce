"""The SMS channel against a real Kannel: what a phone receives, what is stored, and what survives failures.

Answers come from the reply stream the way a worker writes them, so each test knows the answer it checks;
the model itself answers in ``test_e2e.py``.
"""

from __future__ import annotations

import asyncio
import base64

import pytest
from sqlalchemy import select

from bot.channels.sms.channel import kannel_gateway
from bot.channels.sms.dispatch import SmsDispatcher
from bot.channels.sms.kannel import KannelGateway
from bot.store.models import Conversation, DeliveryState, Message, OutboundSms, Request, Role, User
from bot.texts import T, text
from soro.metrics import BotMetrics
from soro.ports import free_port
from tajik.sms import ELLIPSIS, GSM7_ELLIPSIS, encoding_of, fit_to_budget, segment_count
from tests.bot.channels.sms.conftest import SmsStack, SmsStackFactory, assert_private, new_number, secrets_of
from tests.support.proxy import LinkShape, TcpProxy
from tests.support.stack import eventually

pytestmark = pytest.mark.slow

QUESTION = "Салом! Дар бораи Душанбе нақл кунед."
TAJIK_SENTENCE = "Душанбе пойтахти Ҷумҳурии Тоҷикистон аст ва дар водии Ҳисор ҷойгир буда, 1 000 000 аҳолӣ дорад. "
LATIN_SENTENCE = "Dushanbe is the capital of Tajikistan, in the Hisor valley, home to 1 000 000 people. "


async def delivery_of(stack: SmsStack, request_id: str) -> DeliveryState | None:
    async with stack.services.sessions() as session:
        message = (await session.scalars(select(Message).where(Message.answer_of == request_id))).first()
        return message.delivery if message else None


async def user_of(stack: SmsStack, number: str) -> User:
    async with stack.services.sessions() as session:
        return (await session.scalars(select(User).where(User.address == number))).one()


@pytest.mark.parametrize(
    ("sentence", "marker", "segment_units"),
    [(TAJIK_SENTENCE, ELLIPSIS, 67), (LATIN_SENTENCE, GSM7_ELLIPSIS, 153)],
    ids=["tajik-ucs2", "latin-gsm7"],
)
async def test_a_1000_character_answer_reaches_the_phone_trimmed_to_the_budget_at_a_word_with_its_report(
    sms_stack: SmsStack, sentence: str, marker: str, segment_units: int
) -> None:
    number = new_number()
    await sms_stack.kannel.inject(number, QUESTION)
    request = await sms_stack.open_request()
    answer = (sentence * 12)[:1000]
    await sms_stack.publish_answer(request, answer)

    [sms] = await sms_stack.answers(number)
    assert sms.sender == "1234"
    assert sms.ucs2 is (segment_units == 67)
    assert len(sms.parts) <= 3, "more segments than the budget"
    assert all(len(part.data) <= (134 if sms.ucs2 else 153) for part in sms.parts)
    assert sms.text.endswith(marker)
    body = sms.text.removesuffix(marker).rstrip()
    assert answer.startswith(body) and answer[len(body)] in " ,.", "a word was cut"
    assert segment_count(sms.text) <= 3 and len(sms.text) > 2 * segment_units, "trimmed far more than needed"

    await eventually(lambda: _delivered(sms_stack, request.id))
    async with sms_stack.services.sessions() as session:
        stored = (await session.scalars(select(Message).where(Message.answer_of == request.id))).one()
        row = (await session.scalars(select(OutboundSms).where(OutboundSms.request_id == request.id))).one()
    assert stored.text == sms.text and stored.external_id == str(row.id)
    assert row.state is DeliveryState.DELIVERED and row.segments == len(sms.parts)
    assert sms_stack.metric("soro_sms_answers_trimmed_total") == 1
    assert sms_stack.metric("soro_sms_segments_sent_total") == len(sms.parts)
    assert sms_stack.metric("soro_sms_dlr_total", {"status": "delivered"}) == 1
    assert sms_stack.metric("soro_sms_segments_per_answer_count") == 1


async def _delivered(stack: SmsStack, request_id: str) -> bool:
    return await delivery_of(stack, request_id) is DeliveryState.DELIVERED


async def test_stop_silences_a_number_until_it_writes_a_start_keyword(sms_stack: SmsStack) -> None:
    number = new_number()
    await sms_stack.kannel.inject(number, "СТОП")
    [stopped] = await sms_stack.answers(number)
    assert stopped.text == text(T.SMS_STOPPED, "tg") and stopped.ucs2
    assert (await user_of(sms_stack, number)).opted_out

    # Nothing more: no answer, no turn for the model, and no second confirmation.
    await sms_stack.kannel.inject(number, "Салом, чӣ хел?")
    await sms_stack.kannel.inject(number, "stop", kind="text")
    await sms_stack.settle(3)
    assert len(sms_stack.kannel.received(number)) == 1
    assert await sms_stack.rows(Request) == []

    # "HAB": НАВ typed with Latin letters on a phone without Cyrillic.
    await sms_stack.kannel.inject(number, "HAB", kind="text")
    welcome = (await sms_stack.answers(number, 2))[1]
    assert welcome.text == text(T.SMS_WELCOME_BACK, "tg")
    assert not (await user_of(sms_stack, number)).opted_out
    await sms_stack.kannel.inject(number, QUESTION)
    await sms_stack.open_request()


async def test_new_starts_a_fresh_conversation(sms_stack: SmsStack) -> None:
    number = new_number()
    await sms_stack.kannel.inject(number, QUESTION)
    request = await sms_stack.open_request()
    await sms_stack.kannel.inject(number, " новый! ")
    [notice] = await sms_stack.answers(number)
    assert notice.text == text(T.NEW_CONVERSATION, "tg")
    async with sms_stack.services.sessions() as session:
        old = await session.get(Conversation, request.conversation_id)
        assert old is not None and not old.active


async def test_over_the_daily_segment_quota_a_number_gets_one_polite_notice(make_sms_stack: SmsStackFactory) -> None:
    async with make_sms_stack(sms_daily_segments=1) as stack:
        number = new_number()
        await stack.kannel.inject(number, "НАВ")  # its one-segment notice uses up the day
        await stack.answers(number)
        await eventually(lambda: stack.metric("soro_sms_segments_sent_total") == 1)
        await stack.kannel.inject(number, QUESTION)
        [_, quota] = await stack.answers(number, 2)
        assert quota.text == text(T.SMS_QUOTA, "tg")
        await stack.kannel.inject(number, "Боз як савол")
        await stack.settle(3)
        assert len(stack.kannel.received(number)) == 2
        assert await stack.rows(Request) == []


async def test_an_mo_kannel_sends_twice_is_stored_and_queued_once(make_sms_stack: SmsStackFactory) -> None:
    # The bot's answers reach Kannel after its HTTP timeout: Kannel sends the same MO again, as it would
    # when a response is lost on the way.
    port = free_port()
    proxy = TcpProxy("127.0.0.1", port, LinkShape(delay_seconds=1.2))
    await proxy.start()
    try:
        async with make_sms_stack(http_port=port, kannel_bot_url=proxy.url, kannel_http_timeout=1) as stack:
            number = new_number()
            await stack.kannel.inject(number, QUESTION)
            await eventually(lambda: stack.metric("soro_duplicate_updates_total", {"channel": "sms"}) >= 1, 30)
            proxy.shape.delay_seconds = 0.0
            await stack.open_request()
            assert await stack.user_texts() == [QUESTION]
            assert await stack.seen() == 1
    finally:
        await proxy.stop()


async def test_an_mo_without_the_secret_is_refused(sms_stack: SmsStack) -> None:
    query = "id=forged-1&from=%2B992901234567&text=%D0%A1%D0%B0%D0%BB%D0%BE%D0%BC&coding=0&charset=UTF-8"
    for secret in ("", "secret=wrong&", "secret=" + "0" * 32 + "&"):
        async with sms_stack.http.get(f"{sms_stack.base_url}/sms/kannel?{secret}{query}") as response:
            assert response.status == 403
    async with sms_stack.http.get(f"{sms_stack.base_url}/sms/kannel/dlr?secret=wrong&id=1&type=1") as response:
        assert response.status == 403
    for credentials in (b"kannel:wrong", b"kannel:", b"", b"\xff"):
        auth = {"Authorization": "Basic " + base64.b64encode(credentials).decode(), "X-Kannel-From": "+992901234567"}
        async with sms_stack.http.post(
            f"{sms_stack.base_url}/sms/kannel?id=forged-2&coding=0", data="Салом".encode(), headers=auth
        ) as response:
            assert response.status == 403
    assert await sms_stack.seen() == 0
    assert await sms_stack.rows(User) == []


async def test_an_mo_from_an_address_outside_the_allow_list_is_refused(make_sms_stack: SmsStackFactory) -> None:
    # Kannel has the right secret but calls from 127.0.0.1, which this bot does not allow.
    async with make_sms_stack(sms_allowed_gateways=["192.0.2.0/24"]) as stack:
        await stack.kannel.inject(new_number(), QUESTION)
        await eventually(lambda: "Retrying request" in stack.kannel.log("smsbox"), 20)
        assert await stack.seen() == 0
        assert await stack.rows(User) == []


async def test_an_answer_ready_while_kannel_is_down_is_delivered_once_it_is_back(sms_stack: SmsStack) -> None:
    number = new_number()
    await sms_stack.kannel.inject(number, QUESTION)
    request = await sms_stack.open_request()
    await sms_stack.kannel.stop()
    await sms_stack.publish_answer(request, "Душанбе пойтахти Тоҷикистон аст.")

    async def retried() -> bool:
        rows = await sms_stack.rows(OutboundSms)
        return bool(rows) and rows[0].attempts >= 2 and rows[0].state is DeliveryState.QUEUED

    await eventually(retried, 20)
    assert sms_stack.metric("soro_sms_gateway_errors_total", {"kind": "connection"}) >= 2
    assert await delivery_of(sms_stack, request.id) is DeliveryState.QUEUED

    await sms_stack.kannel.start()
    [sms] = await sms_stack.answers(number)
    assert sms.text == "Душанбе пойтахти Тоҷикистон аст."
    await eventually(lambda: _delivered(sms_stack, request.id))
    await sms_stack.settle(1)
    assert len(sms_stack.kannel.received(number)) == 1, "sent twice"


async def test_invalid_and_mixed_encodings_are_read_or_answered_and_nothing_is_lost(sms_stack: SmsStack) -> None:
    emoji, utf8_as_gsm, cp1251, broken, garbage, bad_byte = (new_number() for _ in range(6))
    await sms_stack.kannel.inject(emoji, "Салом, чӣ хел? 😀")
    await sms_stack.kannel.inject(utf8_as_gsm, "Ҳаво чӣ гуна аст?", kind="text")  # UTF-8 bytes, coding 0
    await sms_stack.kannel.inject(cp1251, "Привет, как дела?".encode("cp1251"), kind="data")
    # A UCS-2 message with a lone surrogate in its second character: Kannel's own recoding would keep only "С".
    await sms_stack.kannel.inject(broken, b"\x04\x21\xd8\x00" + "алом дӯстон".encode("utf-16-be"))
    await sms_stack.kannel.inject(garbage, bytes(range(0x80, 0xC0)), kind="data")
    # UTF-8 that lost the second byte of "а" on the way: not Windows-1251 mojibake ("РЎР°…").
    await sms_stack.kannel.inject(bad_byte, "Са".encode()[:3] + "лом, дӯстон".encode(), kind="data")
    await sms_stack.settle(6)

    texts = sorted(await sms_stack.user_texts())
    expected = [
        "Салом, чӣ хел? 😀",
        "Ҳаво чӣ гуна аст?",
        "Привет, как дела?",
        "С\ufffdалом дӯстон",
        "С\ufffdлом, дӯстон",
    ]
    assert texts == sorted(expected)
    [unreadable] = await sms_stack.answers(garbage)
    assert unreadable.text == text(T.SMS_UNREADABLE, "tg")
    assert encoding_of(unreadable.text).value == "ucs2"
    assert sms_stack.metric("soro_messages_rejected_total", {"channel": "sms", "reason": "unreadable"}) == 1
    assert "Retrying request" not in sms_stack.kannel.log("smsbox"), "an MO was refused and sent again"
    assert [m.role for m in await sms_stack.rows(Message)] == [Role.USER] * 5


async def test_an_answer_stored_before_a_crash_is_sent_once_after_the_restart(sms_stack: SmsStack) -> None:
    number = new_number()
    await sms_stack.kannel.inject(number, QUESTION)
    request = await sms_stack.open_request()
    # A delivery process claimed the answer and put it in the outbox, then died before finishing the turn.
    target = await sms_stack.services.pipeline.claim_final(request.id)
    assert target is not None
    first = await sms_stack.channel.sender.send_final(target, "Душанбе.")
    # After its claim ran out, the reply event is delivered again: the outbox already has this answer.
    sms_stack.delivery.lease_seconds = 1.0
    await asyncio.sleep(1.1)
    await sms_stack.publish_answer(request, "Душанбе.")
    [sms] = await sms_stack.answers(number)
    assert sms.text == "Душанбе."
    await sms_stack.settle(1)
    assert len(sms_stack.kannel.received(number)) == 1
    assert [row.id for row in await sms_stack.rows(OutboundSms)] == [int(first.external_ids[0])]


async def test_two_bot_processes_sharing_the_outbox_send_each_sms_once(sms_stack: SmsStack) -> None:
    services, settings = sms_stack.services, sms_stack.settings
    other = SmsDispatcher(
        sms_stack.channel.outbox,
        kannel_gateway(settings),
        services.pipeline,
        services.limits,
        BotMetrics(),
        settings.sms_cost_per_segment,
        settings.sms_gateway_retry_max_seconds,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(other.run(stop))
    try:
        numbers = [new_number() for _ in range(12)]
        for number in numbers:
            await sms_stack.channel.outbox.add(number, "Салом!", 1, notice=True)
        sms_stack.channel.dispatcher.wake.set()
        other.wake.set()
        await eventually(lambda: all(sms_stack.kannel.received(n) for n in numbers), 20)
        await asyncio.sleep(1.5)
        assert [len(sms_stack.kannel.received(n)) for n in numbers] == [1] * 12
        sent_here = sms_stack.metric("soro_sms_segments_sent_total")
        sent_there = other.metrics.registry.get_sample_value("soro_sms_segments_sent_total") or 0.0
        assert sent_here + sent_there == 12
    finally:
        stop.set()
        await task
        await other.gateway.close()


async def test_a_wrong_sendsms_password_holds_answers_until_an_operator_fixes_it(
    make_sms_stack: SmsStackFactory,
) -> None:
    async with make_sms_stack(sms_kannel_password="not-the-password") as stack:
        number = new_number()
        await stack.kannel.inject(number, QUESTION)
        request = await stack.open_request()
        await stack.publish_answer(request, "Душанбе.")
        await eventually(lambda: stack.metric("soro_sms_gateway_errors_total", {"kind": "auth"}) >= 2, 20)
        assert stack.kannel.received(number) == []
        # The operator corrects the setting (here, in place of a restart with the right value).
        gateway = stack.channel.gateway
        assert isinstance(gateway, KannelGateway)
        gateway.password = stack.kannel.config.password
        [sms] = await stack.answers(number)
        assert sms.text == "Душанбе."


def long_question(length: int) -> str:
    """A Tajik question of exactly ``length`` characters, ending in a letter (normalising keeps it whole)."""
    return (TAJIK_SENTENCE * (length // len(TAJIK_SENTENCE) + 1))[: length - 1].rstrip() + "?"


@pytest.mark.parametrize("length", [2000, 4000])
async def test_a_long_question_through_kannel_reaches_the_bot_and_is_answered(
    sms_stack: SmsStack, length: int, private_logs: pytest.LogCaptureFixture
) -> None:
    number, question = new_number(), long_question(length)
    await sms_stack.kannel.inject(number, question)
    request = await sms_stack.open_request()
    assert await sms_stack.user_texts() == [question]
    await sms_stack.publish_answer(request, "Душанбе.")
    [sms] = await sms_stack.answers(number)
    assert sms.text == "Душанбе."
    assert "Retrying request" not in sms_stack.kannel.log("smsbox"), "the bot refused the MO at first"
    assert_private(private_logs.text, secrets_of(sms_stack), [number], [question])


async def test_a_question_over_the_input_limit_gets_the_polite_refusal(sms_stack: SmsStack) -> None:
    number, limit = new_number(), sms_stack.settings.max_input_chars
    await sms_stack.kannel.inject(number, long_question(limit + 1))
    [sms] = await sms_stack.answers(number)
    assert sms.text == fit_to_budget(text(T.TOO_LONG, "tg", limit=limit), sms_stack.settings.sms_segment_budget)[0]
    assert await sms_stack.rows(Request) == []


async def test_a_request_line_too_long_even_for_the_bot_leaks_no_secret_number_or_text(
    sms_stack: SmsStack, private_logs: pytest.LogCaptureFixture
) -> None:
    # An old get-url configuration and a question longer than any request line the bot reads.
    secret, number = sms_stack.settings.sms_mo_secret.get_secret_value(), new_number()
    query = f"secret={secret}&id=long-1&from=%2B{number[1:]}&text={'%D0%A1%D0%B0%D0%BB%D0%BE%D0%BC+' * 1200}"
    async with sms_stack.http.get(f"{sms_stack.base_url}/sms/kannel?{query}&coding=0&charset=UTF-8") as response:
        assert response.status == 400
    assert "Error handling request" in private_logs.text, "the refusal was not logged at all"
    assert_private(private_logs.text, secrets_of(sms_stack), [number], ["Салом"])
    assert "%D0%A1" not in private_logs.text, "message text in the logs"


async def test_a_legacy_get_url_of_a_4000_character_question_is_still_read(sms_stack: SmsStack) -> None:
    secret, number = sms_stack.settings.sms_mo_secret.get_secret_value(), new_number()
    question = long_question(sms_stack.settings.max_input_chars)
    text_bytes = "".join(f"%{b:02X}" for b in question.encode("utf-16-be"))
    query = f"secret={secret}&id=legacy-1&from=%2B{number[1:]}&text={text_bytes}&coding=2&charset=UTF-16BE"
    async with sms_stack.http.get(f"{sms_stack.base_url}/sms/kannel?{query}") as response:
        assert response.status == 200
    await sms_stack.open_request()
    assert await sms_stack.user_texts() == [question]
