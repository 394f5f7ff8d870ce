"""Telegram → webhook → Redis Streams → worker → real vLLM → delivery → the Bot API stand-in.

What a user would see is read back from the stand-in's record of Bot API calls.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest

from bot.channels.telegram.previews import PreviewPolicy
from bot.channels.telegram.sender import feedback_data
from bot.store.models import RequestState, Role, Vote
from inference.queue import ReplyEvent, ReplyKind
from tests.support.proxy import LinkShape, TcpProxy
from tests.support.stack import Stack, eventually, running_stack, stack_settings
from tests.support.telegram_api import sticker_update, text_update
from tests.support.vllm import ServedModel

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

PRIVATE = 1001
GROUP = -2001
QUESTION = "Салом! Лутфан дар бораи Душанбе нақл кунед."
FAST_PREVIEWS = PreviewPolicy(min_interval=0.05, rtt_factor=1.0, min_new_chars=4)

StackFactory = Callable[..., AbstractAsyncContextManager[Stack]]


@pytest.fixture
def make_stack(postgres_url: str, redis_url: str, vllm_server: ServedModel) -> StackFactory:
    def make(workers: int = 1, llm_base_url: str | None = None, **overrides: Any) -> AbstractAsyncContextManager[Stack]:
        settings = stack_settings(
            postgres_url, redis_url, llm_base_url or vllm_server.base_url, vllm_server.model, **overrides
        )
        return running_stack(settings, workers=workers, preview_policy=FAST_PREVIEWS)

    return make


@pytest.fixture
async def stack(make_stack: StackFactory) -> AsyncIterator[Stack]:
    async with make_stack() as running:
        yield running


async def final_messages(stack: Stack, chat: int, count: int = 1, timeout: float = 60) -> list[str]:
    await stack.api.wait_for(lambda: len(stack.api.sent("sendMessage", chat)) >= count, timeout)
    return [c.params["text"] for c in stack.api.sent("sendMessage", chat)]


async def test_a_question_streams_a_preview_then_one_final_answer_that_is_stored(stack: Stack) -> None:
    assert await stack.post_update(text_update(1, PRIVATE, QUESTION)) == 200
    [answer] = await final_messages(stack, PRIVATE)
    drafts = stack.api.sent("sendMessageDraft", PRIVATE)
    assert drafts, "the answer was not streamed as a draft"
    assert drafts[-1].at <= stack.api.sent("sendMessage", PRIVATE)[0].at
    assert answer.startswith(drafts[0].params["text"].strip()[:10])
    assert "parse_mode" not in stack.api.sent("sendMessage", PRIVATE)[0].params

    await eventually(lambda: _answered(stack))
    [question, stored] = await stack.messages(PRIVATE)
    [request] = await stack.request_rows(PRIVATE)
    assert question.role is Role.USER and question.text == QUESTION and question.request_id == request.id
    assert stored.role is Role.ASSISTANT and stored.answer_of == request.id
    assert stored.text == answer
    assert stored.model == stack.settings.llm_model
    assert stored.completion_tokens and stored.prompt_tokens and stored.latency_ms is not None
    assert request is not None and request.state is RequestState.ANSWERED


async def test_the_conversation_keeps_context(stack: Stack) -> None:
    await stack.post_update(text_update(1, PRIVATE, "Номи ман Ситора аст."))
    await final_messages(stack, PRIVATE, 1)
    await stack.post_update(text_update(2, PRIVATE, "Номи ман чист?"))
    await final_messages(stack, PRIVATE, 2)
    requests = await stack.request_rows(PRIVATE)
    second_turn = requests[1].payload
    assert "Номи ман Ситора аст." in second_turn and "Номи ман чист?" in second_turn


async def test_group_chats_stream_by_editing_one_message(stack: Stack) -> None:
    await stack.post_update(text_update(1, GROUP, QUESTION, user_id=77))
    await stack.api.wait_for(lambda: len(stack.api.sent("editMessageText", GROUP)) >= 1)
    await eventually(lambda: _answered(stack))
    assert len(stack.api.texts(GROUP)) == 1
    assert not stack.api.sent("sendMessageDraft")


async def test_wrong_webhook_secret_is_refused_and_nothing_is_stored(stack: Stack) -> None:
    assert await stack.post_update(text_update(1, PRIVATE, QUESTION), secret="guess") == 401
    assert await stack.request_rows() == []


async def test_a_duplicate_update_is_answered_once(stack: Stack) -> None:
    update = text_update(5, PRIVATE, QUESTION)
    assert await stack.post_update(update) == 200
    assert await stack.post_update(update) == 200
    await final_messages(stack, PRIVATE)
    assert await stack.post_update(update) == 200
    assert len(await stack.request_rows()) == 1
    assert len(stack.api.sent("sendMessage", PRIVATE)) == 1


async def test_stickers_get_a_polite_tajik_reply(stack: Stack) -> None:
    assert await stack.post_update(sticker_update(9, PRIVATE)) == 200
    [reply] = await final_messages(stack, PRIVATE)
    assert "танҳо матнро мефаҳмам" in reply
    assert await stack.request_rows() == []


async def test_commands_answer_in_tajik_and_unknown_ones_politely(stack: Stack) -> None:
    await stack.post_update(text_update(1, PRIVATE, "/start"))
    await stack.post_update(text_update(2, PRIVATE, "/help"))
    await stack.post_update(text_update(3, PRIVATE, "/frobnicate"))
    replies = await final_messages(stack, PRIVATE, 4)
    assert replies[0].startswith("Ассалому алейкум")
    assert "reply_markup" in stack.api.sent("sendMessage", PRIVATE)[1].params  # the language menu
    assert "/new" in replies[2]
    assert "/help" in replies[3]


async def test_a_429_storm_skips_previews_but_the_final_answer_arrives_once(stack: Stack) -> None:
    stack.api.fail("sendMessageDraft", "sendMessage", status=429, retry_after=1, times=6)
    await stack.post_update(text_update(1, PRIVATE, QUESTION))
    [answer] = await final_messages(stack, PRIVATE, timeout=90)
    assert answer
    failed = [c for c in stack.api.calls if c.failed == 429]
    assert failed, "the storm never hit"
    skipped = stack.services.metrics.partial_updates.labels("telegram", "skipped")._value.get()
    assert skipped >= 1


async def test_a_worker_killed_mid_generation_still_gets_the_answer_delivered_once(
    make_stack: StackFactory, vllm_server: ServedModel
) -> None:
    # The doomed worker reads the model through a slow link, so it is surely mid-answer when it dies.
    slow_link = TcpProxy("127.0.0.1", vllm_server.port, LinkShape(bytes_per_second=3_000))
    await slow_link.start()
    async with make_stack(workers=0) as stack:
        doomed = stack.start_worker(llm_base_url=f"{slow_link.url}/v1")
        await stack.post_update(text_update(1, PRIVATE, QUESTION))
        await stack.api.wait_for(lambda: len(stack.api.sent("sendMessageDraft", PRIVATE)) >= 1)
        assert not stack.api.sent("sendMessage", PRIVATE)
        await stack.kill_worker(doomed)
        rescuer = stack.start_worker()
        [answer] = await final_messages(stack, PRIVATE, timeout=90)
        assert answer
        assert rescuer.worker.metrics.reclaimed._value.get() == 1
        await eventually(lambda: _answered(stack))
        assert len(stack.api.sent("sendMessage", PRIVATE)) == 1
    await slow_link.stop()


async def test_vllm_down_then_up_loses_nothing(make_stack: StackFactory, vllm_server: ServedModel) -> None:
    proxy = TcpProxy("127.0.0.1", vllm_server.port)
    await proxy.start()
    await proxy.stop()  # the model server is down before the question arrives
    async with make_stack(llm_base_url=f"{proxy.url}/v1", llm_retry_max_seconds=1.0) as stack:
        await stack.post_update(text_update(1, PRIVATE, QUESTION))
        worker = stack.workers[0].worker
        await eventually(lambda: _errors(worker.metrics) >= 2)
        assert not stack.api.sent("sendMessage", PRIVATE)
        await proxy.start()
        [answer] = await final_messages(stack, PRIVATE)
        assert answer
    await proxy.stop()


async def test_past_the_deadline_the_user_gets_a_tajik_notice(make_stack: StackFactory) -> None:
    async with make_stack(workers=0, request_deadline_seconds=1.0) as stack:
        await stack.post_update(text_update(1, PRIVATE, QUESTION))
        [notice] = await final_messages(stack, PRIVATE, timeout=30)
        assert "сари вақт" in notice
        await eventually(lambda: _in_state(stack, RequestState.EXPIRED))
        # A worker that comes back late finds the request expired and sends nothing more.
        stack.start_worker()
        await eventually(lambda: _stream_drained(stack))
        assert len(stack.api.sent("sendMessage", PRIVATE)) == 1


async def test_over_the_backlog_limit_new_messages_get_a_busy_notice(make_stack: StackFactory) -> None:
    async with make_stack(workers=0, backlog_limit=1) as stack:
        await stack.post_update(text_update(1, 3001, QUESTION))
        await stack.post_update(text_update(2, 3002, QUESTION))
        [busy] = await final_messages(stack, 3002)
        assert "дақиқа" in busy
        assert not stack.api.sent("sendMessage", 3001)


async def test_a_5000_character_answer_arrives_in_two_messages(make_stack: StackFactory) -> None:
    async with make_stack(workers=0) as stack:
        await stack.post_update(text_update(1, PRIVATE, QUESTION))
        [request] = await stack.request_rows()
        paragraph = "Душанбе пойтахти Ҷумҳурии Тоҷикистон аст. " * 30
        long_answer = "\n\n".join([paragraph.strip()] * 4)
        assert len(long_answer) > 5000
        event = ReplyEvent(request.id, request.conversation_id, "telegram", ReplyKind.FINAL, text=long_answer)
        await stack.services.queue.publish(event, stack.services.queue.names.replies("telegram"))
        parts = await final_messages(stack, PRIVATE, 2)
        assert len(parts) == 2 and all(len(p) <= 4096 for p in parts)
        assert "\n\n".join(parts) == long_answer


async def _in_state(stack: Stack, state: RequestState) -> bool:
    return [r.state for r in await stack.request_rows()] == [state]


async def _answered(stack: Stack) -> bool:
    return any(r.state is RequestState.ANSWERED for r in await stack.request_rows())


async def _stream_drained(stack: Stack) -> bool:
    return await stack.services.queue.backlog() == 0


def _errors(metrics: Any) -> float:
    return sum(sample.value for sample in metrics.llm_errors.collect()[0].samples if sample.name.endswith("_total"))


async def test_a_candidate_model_on_its_own_server_answers_with_buttons_and_records_itself(
    postgres_url: str, redis_url: str, vllm_server: ServedModel
) -> None:
    # The current model's server is down; every conversation goes to the candidate, which answers: the worker
    # picked the candidate's client by the model the bot put on the turn.
    settings = stack_settings(
        postgres_url,
        redis_url,
        "http://127.0.0.1:9/v1",
        "soro-current",
        llm_candidate_model=vllm_server.model,
        llm_candidate_base_url=vllm_server.base_url,
        llm_candidate_share=1.0,
    )
    async with running_stack(settings, workers=1, preview_policy=FAST_PREVIEWS) as stack:
        await stack.post_update(text_update(1, PRIVATE, QUESTION))
        [answer] = await final_messages(stack, PRIVATE)
        assert answer
        final = stack.api.sent("sendMessage", PRIVATE)[0].params
        [request] = await stack.request_rows(PRIVATE)
        assert [b["callback_data"] for b in final["reply_markup"]["inline_keyboard"][0]] == [
            feedback_data(request.id, Vote.UP),
            feedback_data(request.id, Vote.DOWN),
        ]
        await eventually(lambda: _answered(stack))
        [_, stored] = await stack.messages(PRIVATE)
        assert stored.model == vllm_server.model and stored.prompt_version
        [request] = await stack.request_rows(PRIVATE)
        assert request.model == vllm_server.model
