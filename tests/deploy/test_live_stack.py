"""A real Prometheus scrapes the running stack, and every dashboard and alert expression is evaluated on it.

The bot (webhook and delivery), two in-process workers and the real vLLM are scraped under the job names of
``deploy/prometheus/prometheus.yml`` (``soro-bot``, ``soro-worker``, ``vllm``). Traffic goes through the webhook
the way Telegram sends it: several conversations (private chats streaming drafts, a group streaming edits), a
sticker, a duplicate update and a 429 from the Bot API. Then every expression of every panel and rule must parse
and evaluate, and every panel about what that traffic exercised must show a series.

Not expected to have data here: the SMS panels (no SMS is sent: the SMS channel's own tests run Kannel), and
the Redis and Kannel exporters' panels (no exporter runs in tests; compose runs them).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from prometheus_client import start_http_server

from bot.channels.telegram.previews import PreviewPolicy
from bot.store.models import RequestState
from soro.ports import free_port
from tests.support.prometheus import (
    Expression,
    Prometheus,
    all_expressions,
    assert_expressions_work,
    assert_metric_names_known,
    running_prometheus,
)
from tests.support.stack import RunningWorker, Stack, eventually, running_stack, stack_settings
from tests.support.telegram_api import callback_update, sticker_update, text_update
from tests.support.vllm import ServedModel

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

QUESTIONS = [
    "Салом! Лутфан дар бораи Душанбе нақл кунед.",
    "Наврӯз чӣ гуна ҷашн гирифта мешавад?",
    "Барои имтиҳон чӣ тавр омода шавам?",
    "Кӯли Искандаркӯл дар куҷост?",
]
GROUP = -2001
STICKER_CHAT = 1900
# Previews on every partial, so the preview and draft series fill within seconds.
FAST_PREVIEWS = PreviewPolicy(min_interval=0.05, rtt_factor=1.0, min_new_chars=4)
NO_SMS_TRAFFIC = ("soro_sms_", "soro:sms_")
NO_EXPORTER_HERE = ("redis_", "bearerbox_")


def reads(expression: Expression, prefixes: tuple[str, ...]) -> bool:
    return any(name.startswith(prefixes) for name in expression.metric_names)


def expect_data(expression: Expression) -> bool:
    """Panels, variables and recording rules about what this traffic exercised (alerts need only evaluate)."""
    return expression.kind in ("panel", "variable", "record") and not reads(
        expression, NO_SMS_TRAFFIC + NO_EXPORTER_HERE
    )


@contextmanager
def serving_metrics(workers: list[RunningWorker]) -> Iterator[list[str]]:
    """Each in-process worker's registry on its own port, as ``soro worker`` serves it; their host:port."""
    servers = []
    try:
        for running in workers:
            port = free_port()
            server, thread = start_http_server(port, addr="127.0.0.1", registry=running.worker.metrics.registry)
            servers.append((server, thread, port))
        yield [f"127.0.0.1:{port}" for _, _, port in servers]
    finally:
        for server, thread, _ in servers:
            server.shutdown()
            server.server_close()
            thread.join()


@pytest.fixture
async def stack(postgres_url: str, redis_url: str, vllm_server: ServedModel) -> AsyncIterator[Stack]:
    settings = stack_settings(postgres_url, redis_url, vllm_server.base_url, vllm_server.model, llm_max_tokens=64)
    async with running_stack(settings, workers=2, preview_policy=FAST_PREVIEWS) as running:
        yield running


async def drive_traffic(stack: Stack) -> None:
    stack.api.fail("sendMessageDraft", "sendMessage", status=429, retry_after=1, times=1)
    update_ids = iter(range(1, 1000))
    chats = [1001 + i for i in range(len(QUESTIONS))]
    for chat, question in zip(chats, QUESTIONS, strict=True):
        assert await stack.post_update(text_update(next(update_ids), chat, question)) == 200
    assert await stack.post_update(text_update(next(update_ids), GROUP, QUESTIONS[0], user_id=77)) == 200
    assert await stack.post_update(sticker_update(next(update_ids), STICKER_CHAT)) == 200
    duplicate = text_update(next(update_ids), 1101, QUESTIONS[1])
    for _ in range(2):
        assert await stack.post_update(duplicate) == 200
    await stack.api.wait_for(lambda: bool(stack.api.sent("sendMessage", STICKER_CHAT)), timeout=30)
    await eventually(lambda: answered(stack, len(chats) + 2), timeout=60)
    # A second turn of one conversation, now that its first answer is in.
    assert await stack.post_update(text_update(next(update_ids), chats[0], "Ташаккур! Боз чӣ?")) == 200
    await eventually(lambda: answered(stack, len(chats) + 3), timeout=60)
    # A 👍 on one answer and a 👎 on another, for the Feedback row.
    for chat, vote in ((chats[1], "up"), (chats[2], "down")):
        [request] = await stack.request_rows(chat)
        answer = stack.api.sent("sendMessage", chat)[0].params["_message_id"]
        tap = callback_update(next(update_ids), chat, answer, f"fb:{vote}:{request.id}")
        assert await stack.post_update(tap) == 200


async def answered(stack: Stack, count: int) -> bool:
    rows = await stack.request_rows()
    return len(rows) == count and all(row.state is RequestState.ANSWERED for row in rows)


async def wait_for_data(prometheus: Prometheus, *exprs: str) -> None:
    for expr in exprs:
        await asyncio.to_thread(prometheus.wait_until, expr, 30.0)


async def test_every_panel_and_rule_works_on_the_running_stack(
    stack: Stack, vllm_server: ServedModel, tmp_path: Path
) -> None:
    with serving_metrics(stack.workers) as worker_targets:
        targets = {
            "soro-bot": [f"127.0.0.1:{stack.settings.http_port}"],
            "soro-worker": worker_targets,
            "vllm": [f"127.0.0.1:{vllm_server.port}"],
        }
        with running_prometheus(targets, tmp_path / "prometheus") as prometheus:
            # Every target scraped once before the first user writes, as in a deployment.
            await wait_for_data(prometheus, "count(up == 1) == 4")
            await drive_traffic(stack)
            await wait_for_data(
                prometheus,
                'sum(rate(soro_replies_delivered_total{kind="answer"}[1m])) > 0',
                'sum(rate(soro_telegram_api_errors_total{code="429"}[1m])) > 0',
                'sum(rate(soro_messages_rejected_total{reason="non_text"}[1m])) > 0',
                "sum(rate(soro_duplicate_updates_total[1m])) > 0",
                "sum(rate(vllm:request_success_total[1m])) > 0",
                "sum(rate(soro_time_to_first_token_seconds_count[1m])) > 0",
                "sum(rate(soro_feedback_total[1m])) > 0",
            )
            outcomes = await asyncio.to_thread(assert_expressions_work, prometheus, None, expect_data)
            assert len(outcomes) == len(all_expressions())
            exercised = [e for e in all_expressions() if not reads(e, NO_SMS_TRAFFIC)]
            await asyncio.to_thread(assert_metric_names_known, prometheus, exercised, ("soro_", "vllm:"))
            assert await asyncio.to_thread(prometheus.rule_errors) == []
            alerts = {e.name: e.expr for e in all_expressions() if e.kind == "alert"}
            # Everything is up, so the alerts about missing processes stay quiet: the job names match the rules.
            for name in ("SoroBotDown", "SoroNoWorkerAlive", "SoroVllmDown"):
                assert await asyncio.to_thread(prometheus.query, alerts[name]) == [], name
