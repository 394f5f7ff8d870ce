"""Prometheus metrics of every Soro process. Names are a contract with the dashboards and alert rules.

Each process builds the metrics it serves into its own registry, so tests can run a bot and workers in one
interpreter without their series colliding.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Answers on a 2G link are slow: latency buckets reach 120 s.
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 13, 20, 30, 45, 60, 90, 120)
FAST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120)

# The label values a process knows before its first event, created at 0 by ``prime``. A labelled series is
# born at its first event, and rate()/increase() cannot see the step from "no series" to 1: without priming,
# the first 429 or the first dead letter of a process would never show on a dashboard or fire an alert.
REPLY_KINDS = ("answer", "expired", "failed", "undeliverable")
REJECTION_REASONS = ("non_text", "too_long", "empty", "busy", "rate_limited", "quota", "blocked", "not_allowed")
SMS_REJECTION_REASONS = ("sms_quota", "unreadable", "opted_out")
PREVIEW_OUTCOMES = ("sent", "skipped")
TELEGRAM_METHODS = ("sendMessage", "sendMessageDraft", "editMessageText")
TELEGRAM_ERROR_CODES = ("429", "network")
DLR_STATUSES = ("delivered", "undelivered", "buffered", "smsc_accepted", "smsc_rejected")
SMS_GATEWAY_ERROR_KINDS = ("connection", "auth")
WORKER_OUTCOMES = ("answered", "expired", "dead_letter")
VOTES = ("up", "down")
MODEL_REPLY_KINDS = ("answer", "expired", "failed")


class DependencyMetrics:
    """Redis and the database as one process sees them; ``soro.outage`` keeps them (bot, worker, any loop)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.up = Gauge(
            "soro_dependency_up",
            "1 while the dependency answers this process, 0 during an outage",
            ["dependency", "process"],  # soro.outage.DEPENDENCIES; bot, worker
            registry=registry,
        )
        self.errors = Counter(
            "soro_dependency_errors_total",
            "Calls that failed because the dependency was unreachable (every retry counts)",
            ["dependency", "process"],
            registry=registry,
        )

    def prime(self, process: str, dependencies: Iterable[str]) -> None:
        """Series born at 1 as the process starts: the step to 0 is what the alert sees."""
        for name in dependencies:
            self.up.labels(name, process).set(1)
            self.errors.labels(name, process)


class BotMetrics:
    """Channels, delivery and the outbound Telegram / SMS calls (the bot, console chat and demo processes)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.messages_received = Counter(
            "soro_messages_received_total", "Messages received from users", ["channel"], registry=r
        )
        self.messages_rejected = Counter(
            "soro_messages_rejected_total",
            "Messages answered with a notice instead of a model turn",
            ["channel", "reason"],  # REJECTION_REASONS, SMS_REJECTION_REASONS
            registry=r,
        )
        self.duplicates = Counter(
            "soro_duplicate_updates_total", "Updates or SMS seen twice and ignored", ["channel"], registry=r
        )
        self.replies_delivered = Counter(
            "soro_replies_delivered_total",
            "Final replies delivered to users",
            ["channel", "kind"],  # REPLY_KINDS
            registry=r,
        )
        self.end_to_end_latency = Histogram(
            "soro_end_to_end_latency_seconds",
            "From receipt of a message to its final answer delivered",
            ["channel"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.first_visible_text = Histogram(
            "soro_first_visible_text_seconds",
            "From receipt of a message to the first text the user sees (preview or answer)",
            ["channel"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.partial_updates = Counter(
            "soro_partial_updates_total",
            "Streamed preview updates, sent or skipped (link too slow, rate limited, answer short)",
            ["channel", "outcome"],
            registry=r,
        )
        self.deadline_expired = Counter(
            "soro_deadline_expired_total",
            "Requests whose deadline passed before an answer",
            ["channel"],
            registry=r,
        )
        self.dead_letters = Counter(
            "soro_dead_letters_total", "Requests that failed every attempt", ["channel"], registry=r
        )
        self.turns_requeued = Counter(
            "soro_turns_requeued_total", "Queued turns a restarted Redis had lost, enqueued again", registry=r
        )
        self.backlog = Gauge("soro_backlog_requests", "Requests queued or in a worker, not yet answered", registry=r)
        self.oldest_request_age = Gauge(
            "soro_oldest_request_age_seconds", "Age of the oldest request not yet answered", registry=r
        )
        self.telegram_api_latency = Histogram(
            "soro_telegram_api_latency_seconds",
            "Round-trip time of Bot API calls",
            ["method"],
            buckets=FAST_BUCKETS,
            registry=r,
        )
        self.telegram_api_errors = Counter(
            "soro_telegram_api_errors_total", "Bot API calls that failed", ["method", "code"], registry=r
        )
        self.telegram_bytes_sent = Counter(
            "soro_telegram_bytes_sent_total",
            "Bytes of message text sent to the Bot API",
            ["method"],
            registry=r,
        )
        # Feedback and models: the current model and a candidate compared on real traffic
        self.feedback = Counter(
            "soro_feedback_total",
            "Votes on answers (a changed vote counts again, under its new side)",
            ["model", "channel", "vote"],  # VOTES
            registry=r,
        )
        self.model_replies = Counter(
            "soro_model_replies_total",
            "Final replies by the model the turn was routed to: answers and notices instead of one",
            ["model", "channel", "kind"],  # MODEL_REPLY_KINDS
            registry=r,
        )
        self.model_latency = Histogram(
            "soro_model_latency_seconds",
            "From receipt of a message to its answer delivered, by the model that wrote it",
            ["model", "channel"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        # SMS channel
        self.sms_segments_sent = Counter(
            "soro_sms_segments_sent_total", "SMS segments handed to the gateway", registry=r
        )
        self.sms_segments_per_answer = Histogram(
            "soro_sms_segments_per_answer",
            "Segments each SMS answer cost",
            buckets=(1, 2, 3, 4, 5, 6, 8, 10),
            registry=r,
        )
        self.sms_answers_trimmed = Counter(
            "soro_sms_answers_trimmed_total", "SMS answers trimmed to the segment budget", registry=r
        )
        self.sms_dlr = Counter("soro_sms_dlr_total", "SMS delivery reports by outcome", ["status"], registry=r)
        self.sms_gateway_errors = Counter(
            "soro_sms_gateway_errors_total", "Failed calls to the SMS gateway", ["kind"], registry=r
        )
        self.dependencies = DependencyMetrics(r)

    def prime(self, channels: Iterable[str], models: Iterable[str] = ()) -> None:
        """Create the series of ``channels`` (telegram, sms, console) and ``models`` at 0, as the process starts."""
        channels, models = list(channels), list(models)
        self.dependencies.prime("bot", ("redis", "database"))
        for channel in channels:
            for model in models:
                for vote in VOTES:
                    self.feedback.labels(model, channel, vote)
                for kind in MODEL_REPLY_KINDS:
                    self.model_replies.labels(model, channel, kind)
                self.model_latency.labels(model, channel)
            for counter in (self.messages_received, self.duplicates, self.deadline_expired, self.dead_letters):
                counter.labels(channel)
            self.end_to_end_latency.labels(channel)
            self.first_visible_text.labels(channel)
            for kind in REPLY_KINDS:
                self.replies_delivered.labels(channel, kind)
            reasons = REJECTION_REASONS + (SMS_REJECTION_REASONS if channel == "sms" else ())
            for reason in reasons:
                self.messages_rejected.labels(channel, reason)
            for outcome in PREVIEW_OUTCOMES:
                self.partial_updates.labels(channel, outcome)
        if "telegram" in channels:
            for method in TELEGRAM_METHODS:
                self.telegram_api_latency.labels(method)
                self.telegram_bytes_sent.labels(method)
                for code in TELEGRAM_ERROR_CODES:
                    self.telegram_api_errors.labels(method, code)
        if "sms" in channels:
            for status in DLR_STATUSES:
                self.sms_dlr.labels(status)
            for kind in SMS_GATEWAY_ERROR_KINDS:
                self.sms_gateway_errors.labels(kind)


class WorkerMetrics:
    """The inference worker: queue, model calls and their outcomes."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.queue_wait = Histogram(
            "soro_queue_wait_seconds",
            "From a request entering the queue to a worker starting it",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.time_to_first_token = Histogram(
            "soro_time_to_first_token_seconds",
            "From the model call to its first token",
            buckets=FAST_BUCKETS,
            registry=r,
        )
        self.generation_time = Histogram(
            "soro_generation_seconds", "Whole model call per request", buckets=LATENCY_BUCKETS, registry=r
        )
        self.generated_tokens = Counter("soro_generated_tokens_total", "Tokens generated by the model", registry=r)
        self.prompt_tokens = Counter("soro_prompt_tokens_total", "Prompt tokens sent to the model", registry=r)
        self.inflight = Gauge("soro_inflight_requests", "Requests this worker is generating now", registry=r)
        self.capacity = Gauge("soro_worker_capacity", "Requests this worker may generate at once", registry=r)
        self.requests = Counter(
            "soro_worker_requests_total",
            "Requests finished by a worker, by outcome",
            ["outcome"],  # WORKER_OUTCOMES
            registry=r,
        )
        self.reclaimed = Counter(
            "soro_worker_reclaimed_total", "Requests taken over from a worker that went silent", registry=r
        )
        self.llm_errors = Counter("soro_llm_errors_total", "Failed model calls, by kind", ["kind"], registry=r)
        self.dependencies = DependencyMetrics(r)

    def prime(self, llm_error_kinds: Iterable[str] = ()) -> None:
        """Create the outcome series, and those of the model errors a worker retries, at 0 (see ``BotMetrics``)."""
        self.dependencies.prime("worker", ("redis",))
        for outcome in WORKER_OUTCOMES:
            self.requests.labels(outcome)
        for kind in llm_error_kinds:
            self.llm_errors.labels(kind)
