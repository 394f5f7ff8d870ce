"""Every dashboard and alert expression against a real Prometheus scraping real Soro metrics.

The bot's and a worker's metrics (``soro.metrics``) are served over HTTP by prometheus-client from this process
and fed with a steady stream of plausible turns on every channel, including the rare ones (429s, expiries, dead
letters, failed SMS), so every panel about Soro must show data. vLLM, Redis and Kannel are not running here:
their expressions must still parse and evaluate.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client import start_http_server

from soro.metrics import BotMetrics, WorkerMetrics
from soro.ports import free_port
from tests.support.prometheus import (
    DEFAULT_VARIABLES,
    Expression,
    Prometheus,
    all_expressions,
    assert_expressions_work,
    assert_metric_names_known,
    running_prometheus,
)

pytestmark = pytest.mark.slow

NOT_RUNNING_HERE = ("vllm:", "redis_", "bearerbox_")
CHANNELS = ["telegram"] * 6 + ["sms"] * 3 + ["console"]
MODELS = ["soro", "soro", "soro", "soro-next"]  # a candidate on a quarter of the traffic
REJECT_REASONS = ["busy", "rate_limited", "too_long", "non_text"]
TURN_INTERVAL = 0.01  # 100 turns a second


class Traffic:
    """Plausible turns through the bot and a worker, with the rare events on a fixed schedule so that each of
    them happens within the first seconds, and failures staying under the alert thresholds."""

    def __init__(self, bot: BotMetrics, worker: WorkerMetrics, seed: int = 7) -> None:
        self.bot = bot
        self.worker = worker
        self.rng = random.Random(seed)
        self.turn = 0
        self.sms_turn = 0

    def initialise(self) -> None:
        """Create every labelled series at 0, as a process should at start: a series born at 1 shows no
        increase, so its first event would be invisible to rate() and increase()."""
        bot, worker = self.bot, self.worker
        bot.dependencies.prime("bot", ("redis", "database"))
        worker.dependencies.prime("worker", ("redis",))
        for channel in set(CHANNELS):
            for metric in (bot.messages_received, bot.duplicates, bot.deadline_expired, bot.dead_letters):
                metric.labels(channel)
            bot.end_to_end_latency.labels(channel)
            bot.first_visible_text.labels(channel)
            for reason in REJECT_REASONS:
                bot.messages_rejected.labels(channel, reason)
            for kind in ("answer", "expired", "failed"):
                bot.replies_delivered.labels(channel, kind)
            for outcome in ("sent", "skipped"):
                bot.partial_updates.labels(channel, outcome)
        for method in ("sendMessageDraft", "sendMessage"):
            bot.telegram_api_latency.labels(method)
            bot.telegram_bytes_sent.labels(method)
        for method, code in (("sendMessageDraft", "429"), ("sendMessage", "network")):
            bot.telegram_api_errors.labels(method, code)
        for channel in set(CHANNELS):
            for model in set(MODELS):
                for vote in ("up", "down"):
                    bot.feedback.labels(model, channel, vote)
                for kind in ("answer", "expired", "failed"):
                    bot.model_replies.labels(model, channel, kind)
                bot.model_latency.labels(model, channel)
        for status in ("smsc_accepted", "delivered", "undelivered"):
            bot.sms_dlr.labels(status)
        bot.sms_gateway_errors.labels("connection")
        worker.llm_errors.labels("APIConnectionError")
        for outcome in ("answered", "expired", "dead_letter"):
            worker.requests.labels(outcome)

    def step(self) -> None:
        i, rng, bot, worker = self.turn, self.rng, self.bot, self.worker
        self.turn += 1
        channel = CHANNELS[i % len(CHANNELS)]
        bot.messages_received.labels(channel).inc()
        if i % 23 == 1:
            bot.duplicates.labels(channel).inc()
        if i % 19 == 2:
            reason = REJECT_REASONS[i % len(REJECT_REASONS)]
            bot.messages_rejected.labels(channel, reason).inc()
            return
        # About 1 % of turns expire or fail: healthy, under the 5 % alert threshold from the first one on.
        kind = "expired" if i % 211 == 100 else "failed" if i % 401 == 120 else "answer"
        worker.queue_wait.observe(rng.uniform(0.01, 1.5))
        worker.requests.labels({"answer": "answered", "expired": "expired", "failed": "dead_letter"}[kind]).inc()
        if i % 45 == 6:
            worker.llm_errors.labels("APIConnectionError").inc()
        if i % 97 == 8:
            worker.reclaimed.inc()
        worker.time_to_first_token.observe(rng.uniform(0.02, 0.4))
        worker.generation_time.observe(rng.uniform(1.5, 15.0))
        worker.generated_tokens.inc(rng.randint(40, 240))
        worker.prompt_tokens.inc(rng.randint(150, 900))
        worker.inflight.set(rng.randint(1, 12))
        worker.capacity.set(64)

        bot.replies_delivered.labels(channel, kind).inc()
        model = MODELS[i % len(MODELS)]
        bot.model_replies.labels(model, channel, kind).inc()
        if kind == "answer":
            bot.model_latency.labels(model, channel).observe(rng.lognormvariate(1.8, 0.5))
            if i % 3 == 0:  # a third of the answers are rated, mostly 👍
                bot.feedback.labels(model, channel, "down" if i % 5 == 0 else "up").inc()
        bot.end_to_end_latency.labels(channel).observe(rng.lognormvariate(1.8, 0.5))
        bot.first_visible_text.labels(channel).observe(rng.uniform(0.4, 3.0))
        if kind == "expired":
            bot.deadline_expired.labels(channel).inc()
        elif kind == "failed":
            bot.dead_letters.labels(channel).inc()
        bot.backlog.set(rng.randint(0, 8))
        bot.oldest_request_age.set(rng.uniform(0.2, 6.0))
        if channel == "sms":
            self.sms(i)
        else:
            self.telegram_like(channel, i)

    def telegram_like(self, channel: str, i: int) -> None:
        bot, rng = self.bot, self.rng
        previews = rng.randint(0, 3)
        for _ in range(previews):
            bot.partial_updates.labels(channel, "sent").inc()
        bot.partial_updates.labels(channel, "skipped").inc(rng.randint(0, 2))
        if channel != "telegram":
            return
        for method, calls in (("sendMessageDraft", previews), ("sendMessage", 1)):
            for _ in range(calls):
                bot.telegram_api_latency.labels(method).observe(rng.uniform(0.04, 0.6))
                bot.telegram_bytes_sent.labels(method).inc(rng.randint(80, 1600))
        if i % 30 == 2:
            bot.telegram_api_errors.labels("sendMessageDraft", "429").inc()
        if i % 60 == 4:
            bot.telegram_api_errors.labels("sendMessage", "network").inc()

    def sms(self, i: int) -> None:
        bot, rng = self.bot, self.rng
        n = self.sms_turn
        self.sms_turn += 1
        segments = rng.choice([1, 1, 2, 2, 3])
        bot.sms_segments_per_answer.observe(segments)
        bot.sms_segments_sent.inc(segments)
        if n % 7 == 1:
            bot.sms_answers_trimmed.inc()
        bot.sms_dlr.labels("smsc_accepted").inc()
        bot.sms_dlr.labels("undelivered" if n % 12 == 2 else "delivered").inc()
        if n % 10 == 3:
            bot.sms_gateway_errors.labels("connection").inc()


def serves_here(expression: Expression) -> bool:
    """Soro's own series and the rules recorded from them; not vLLM's or the exporters'."""
    return expression.source != "vllm.json" and not any(
        name.startswith(NOT_RUNNING_HERE) for name in expression.metric_names
    )


def should_have_data(expression: Expression) -> bool:
    return expression.kind in ("panel", "variable", "record") and serves_here(expression)


@pytest.fixture(scope="module")
def soro_targets() -> Iterator[tuple[dict[str, list[str]], Callable[[], None]]]:
    """The bot's and a worker's /metrics, and a function that starts the traffic."""
    bot, worker = BotMetrics(), WorkerMetrics()
    traffic = Traffic(bot, worker)
    traffic.initialise()
    servers = {}
    for job, registry in (("soro-bot", bot.registry), ("soro-worker", worker.registry)):
        port = free_port()
        servers[job] = (port, start_http_server(port, addr="127.0.0.1", registry=registry))
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(TURN_INTERVAL):
            traffic.step()

    thread = threading.Thread(target=run, name="traffic", daemon=True)
    try:
        yield {job: [f"127.0.0.1:{port}"] for job, (port, _) in servers.items()}, thread.start
    finally:
        stop.set()
        if thread.is_alive():
            thread.join()
        for _, (server, server_thread) in servers.values():
            server.shutdown()
            server.server_close()
            server_thread.join()


@pytest.fixture(scope="module")
def prometheus(
    soro_targets: tuple[dict[str, list[str]], Callable[[], None]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Prometheus]:
    targets, start_traffic = soro_targets
    workdir: Path = tmp_path_factory.mktemp("prometheus")
    with running_prometheus(targets, workdir) as prometheus:
        # Scraped once before any traffic, the way a deployment is scraped before its first user writes.
        prometheus.wait_until('count(up{job=~"soro-bot|soro-worker"} == 1) == 2')
        start_traffic()
        # Rates need two scrapes of a changed counter; the SMS spend needs the rules evaluated once after that.
        prometheus.wait_until("sum(rate(soro_dead_letters_total[1m])) > 0")
        prometheus.wait_until("soro:sms_spend_24h > 0")
        yield prometheus


def test_every_expression_evaluates_and_every_soro_panel_has_data(prometheus: Prometheus) -> None:
    outcomes = assert_expressions_work(prometheus, expect_data=should_have_data)
    assert len(outcomes) == len(all_expressions())
    with_data = sum(o.series > 0 for o in outcomes)
    assert with_data >= sum(should_have_data(o.expression) for o in outcomes)


def test_choosing_one_channel_still_shows_data(prometheus: Prometheus) -> None:
    variables = {**DEFAULT_VARIABLES, "channel": "telegram"}
    assert_expressions_work(prometheus, all_expressions(variables), expect_data=should_have_data)


def test_every_soro_metric_read_is_scraped(prometheus: Prometheus) -> None:
    assert_metric_names_known(prometheus, all_expressions(), prefixes=("soro_",))


def test_rules_evaluate_without_errors(prometheus: Prometheus) -> None:
    assert prometheus.rule_errors() == []


def test_alerts_on_healthy_traffic(prometheus: Prometheus) -> None:
    rules = {e.name: e.expr for e in all_expressions() if e.kind == "alert"}
    # Steady, healthy traffic: these conditions must not hold.
    for name in [
        "SoroBotDown",
        "SoroNoWorkerAlive",
        "SoroBacklogGrowing",
        "SoroLatencyHigh",
        "SoroErrorRatioHigh",
        "SoroSmsDeliveryFailing",
        "SoroSmsSpendNearQuota",
        "SoroThumbsDownDoubled",
    ]:
        assert prometheus.query(rules[name]) == [], name
    # Dead letters were produced, and nothing serves vLLM or Redis here: these conditions hold.
    for name in ["SoroDeadLetters", "SoroVllmDown", "SoroRedisDown"]:
        assert prometheus.query(rules[name]), name
