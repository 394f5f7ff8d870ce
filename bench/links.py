"""Streamed answers over constrained links: what Telegram previews cost in bytes, and what they buy in time.

The same conversations run once per link between the bot and the Bot API stand-in (``tests/support``): good
(20 ms round trip), 3G (150 ms, 1 % loss) and 2G (600 ms, 3 % loss, 50 kbit/s). The kernel of the machine
these figures come from has no ``netem``, so the project's shaping TCP proxy imitates each link: latency,
bandwidth (each direction of each connection) and loss (a lost TCP segment lands a retransmission later).
Everything else is real: webhook, SQLite, Redis Streams, a worker, vLLM (CPU), the delivery loop and the
Telegram sender with its preview policy. vLLM serves the tests' tiny random model, which writes 160 tokens in
0.2 s and seldom stops by itself (each run prints what it wrote for each length asked): a second proxy paces
its stream (``--model-pace`` tokens a second), and the conversations get answers of ``ANSWER_TOKENS`` lengths
in turn (``--answer-tokens``), so answers stream for seconds, as a production model's do.

The tiny model's tokens are about 2 UTF-8 bytes each, a real Gemma 3's on Tajik Cyrillic 6–8: the default
lengths give answers of 15–650 bytes, shorter than a teacher-style assistant's 1–3 KB, and every call's fixed
cost (request line, headers, JSON keys) weighs more on them. For answers of real length in bytes:

    .venv/bin/python -m bench.links --links 2G --answer-tokens 160 320 640 960 1280 --model-pace 60

(at 60 tokens a second the tiny model's text grows about as many characters a second as a real model's at
20–30). Lengths past what the tiny model's 512 positions hold get a longer context: its random weights learned
no positions (rotary embeddings), so that is only a number in its config and vLLM's ``--max-model-len``.

    .venv/bin/python -m bench.links                      # from the repository root; starts vLLM
    .venv/bin/python -m bench.links --links 2G --policy fixed --llm-base-url http://127.0.0.1:8000/v1

Per link it prints: the answers' mean UTF-8 bytes and Bot API calls per answer, text bytes sent per answer
(previews and final) over the answer's bytes, the TCP bytes from the bot to the Bot API over the answers' bytes
(HTTP and body encoding included; every call of the run, ``setWebhook`` too) and per call, preview updates per
answer, the model's first token, the first visible
text and the final answer (seconds from the webhook), and the share of answers whose first text was visible
within the first token plus one round trip of the link. Times are in seconds. A second table splits the
answers by their length in UTF-8 bytes, with the bytes of each answer's own calls as the Bot API stand-in
received them (request line, headers and body).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

from redis.asyncio import Redis
from sqlalchemy import select

from bot.channels.telegram.previews import PreviewPolicy
from bot.store.migrate import upgrade
from bot.store.models import Conversation, Request, RequestState, User
from inference.queue import Delivery, ReplyEvent, ReplyKind, RequestQueue, StreamNames, TurnRequest
from inference.worker import Worker, llm_client
from soro.metrics import WorkerMetrics
from soro.settings import Settings
from soro.vllm_runtime import VllmOptions, VllmServer, build_tiny_model_dir
from tests.support.proxy import LinkShape, TcpProxy
from tests.support.stack import Stack, eventually, running_stack, stack_settings
from tests.support.telegram_api import Call, text_update

QUESTIONS = [
    "Салом! Дар бораи кӯҳҳои Помир ба ман нақл кунед, лутфан.",
    "Наврӯз чӣ гуна ҷашн гирифта мешавад?",
    "Барои имтиҳони математика чӣ тавр омода шавам?",
    "Кӯли Искандаркӯл дар куҷост ва чаро машҳур аст?",
    "Ба ман дар бораи Рӯдакӣ каме гӯед.",
    "Чӣ тавр гандумро дар кӯҳистон беҳтар парвариш кунам?",
    "Фарқи байни обу ҳаво ва иқлим чист?",
    "Лутфан як шеъри кӯтоҳ дар бораи баҳор нависед.",
    "Чаро дарёи Панҷ муҳим аст?",
    "Барои кӯдакон кадом китобҳоро тавсия медиҳед?",
]
# Answer lengths in tokens, given to the conversations in turn: short, medium and long answers alike.
ANSWER_TOKENS = (40, 100, 160, 240, 320)
TINY_CONTEXT = 512  # the tiny model's positions, and vLLM's --max-model-len for it
PROMPT_ROOM = 256  # tokens the system prompt and one question take, with room to spare
# Where the second table splits answers, in UTF-8 bytes: the tiny model's usual ones, and real ones of 1–3 KB.
LENGTH_BUCKETS = (1000, 2000)
# vLLM streams one server-sent event of about this many bytes per token: the model's pace as a bandwidth.
SSE_BYTES_PER_TOKEN = 218
TEXT_METHODS = frozenset({"sendMessageDraft", "editMessageText", "sendMessage"})
SETTINGS_DEFAULTS = Settings.model_fields


@dataclass(frozen=True)
class Link:
    name: str
    rtt_seconds: float
    loss: float = 0.0
    bytes_per_second: float | None = None

    def shape(self, seed: int) -> LinkShape:
        return LinkShape(self.rtt_seconds / 2, self.bytes_per_second, self.loss, seed=seed)


LINKS = {
    link.name: link
    for link in (
        Link("good", 0.020),
        Link("3G", 0.150, loss=0.01),
        Link("2G", 0.600, loss=0.03, bytes_per_second=50_000 / 8),
    )
}
POLICIES = {
    "adaptive": PreviewPolicy(),
    # What a link-blind policy does: an update a second, whatever the link, the length or the bytes.
    "fixed": PreviewPolicy(rtt_factor=0.0, worth_rtts=0.0, budget_rtt=float("inf")),
}


@dataclass(frozen=True)
class Answer:
    """What one user saw, in seconds from the moment the webhook received the question."""

    sent_bytes: int  # text of every preview and of the final message
    final_bytes: int
    wire_bytes: int  # of every call for this answer, as the Bot API received them: request line, headers, body
    calls: int  # Bot API calls for this answer: previews, final parts, failed tries
    previews: int
    first_token: float
    first_visible: float
    final: float


@dataclass(frozen=True)
class LinkResult:
    link: Link
    answers: list[Answer]
    wire_bytes_up: int

    def met_goal(self, answer: Answer) -> bool:
        return answer.first_visible <= answer.first_token + self.link.rtt_seconds


async def converse(stack: Stack, conversations: int, spacing: float) -> dict[int, tuple[float, float]]:
    """Post one question per conversation, ``spacing`` seconds apart; chat id → (monotonic, wall) time posted.
    Every fifth conversation is a group chat (previews by editing a message), the others private (drafts)."""
    posted: dict[int, tuple[float, float]] = {}
    for i in range(conversations):
        chat = -(2000 + i) if i % 5 == 4 else 1000 + i
        update = text_update(i + 1, chat, QUESTIONS[i % len(QUESTIONS)], user_id=1000 + i)
        posted[chat] = (time.monotonic(), time.time())
        status = await stack.post_update(update)
        if status != 200:
            raise RuntimeError(f"the webhook answered {status}")
        await asyncio.sleep(spacing)
    return posted


async def all_answered(stack: Stack, count: int) -> bool:
    rows = await stack.request_rows()
    return len(rows) == count and all(row.state is RequestState.ANSWERED for row in rows)


class WatchedQueue(RequestQueue):
    """The queue as the worker sees it. It notes when each answer's first token came (wall clock), and gives
    the conversations answers of the given lengths in turn: the tiny model never stops by itself."""

    def __init__(self, redis: Redis, names: StreamNames, lengths: Sequence[int]) -> None:
        super().__init__(redis, names)
        self.first_token_at: dict[str, float] = {}
        self.lengths = lengths
        self.generated: dict[int, list[tuple[int, str]]] = {}  # tokens asked → (tokens written, why it stopped)
        self.asked: dict[str, int] = {}

    async def read(self, consumer: str, count: int, block_ms: int) -> list[Delivery]:
        deliveries = await super().read(consumer, count, block_ms)
        self.asked.update((d.request.request_id, self.answer_tokens(d.request)) for d in deliveries)
        return [replace(d, request=replace(d.request, max_tokens=self.answer_tokens(d.request))) for d in deliveries]

    def answer_tokens(self, request: TurnRequest) -> int:
        # Conversations are numbered in the order they were opened, the same on every link.
        return self.lengths[(request.conversation_id - 1) % len(self.lengths)]

    async def publish_many(self, replies: Sequence[tuple[ReplyEvent, str, str | None]]) -> list[BaseException | None]:
        for event, _, _ in replies:
            if event.kind is ReplyKind.FINAL:
                # Published as the generation ended: step back to its first token.
                self.first_token_at[event.request_id] = (
                    event.created_at - event.generation_seconds + event.first_token_seconds
                )
                asked = self.asked.get(event.request_id, 0)
                self.generated.setdefault(asked, []).append((event.completion_tokens, event.finish_reason))
        return await super().publish_many(replies)


@asynccontextmanager
async def watched_worker(stack: Stack, model_pace: LinkShape, lengths: Sequence[int]) -> AsyncIterator[WatchedQueue]:
    """A worker reading the model through a link that paces its stream (a production model's speed)."""
    model_url = urlsplit(stack.settings.llm_base_url)
    paced = TcpProxy(model_url.hostname or "127.0.0.1", model_url.port or 80, model_pace)
    await paced.start()
    settings = stack.settings.model_copy(update={"llm_base_url": f"{paced.url}/v1"})
    queue = WatchedQueue(stack.services.redis, stack.services.queue.names, lengths)
    worker = Worker(settings, queue, llm_client(settings), WorkerMetrics())
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        yield queue
    finally:
        stop.set()
        await task
        await worker.llm.close()
        await paced.stop()


async def first_token_times(stack: Stack, queue: WatchedQueue) -> dict[int, float]:
    """Chat id → wall-clock time of the model's first token of its answer."""
    async with stack.services.sessions() as session:
        query = select(Request.id, User.address).select_from(Request).join(Conversation).join(User)
        chats = {request_id: int(address) for request_id, address in (await session.execute(query)).all()}
    return {chats[request_id]: at for request_id, at in queue.first_token_at.items()}


def answer_of(calls: Sequence[Call], posted: tuple[float, float], first_token_wall: float) -> Answer:
    texts = [c for c in calls if c.method in TEXT_METHODS]
    shown = [c for c in texts if c.failed is None]
    final = shown[-1]
    return Answer(
        sent_bytes=sum(len(c.params["text"].encode()) for c in texts),
        final_bytes=len(final.params["text"].encode()),
        wire_bytes=sum(c.wire_bytes for c in calls),
        calls=len(texts),
        previews=len(shown) - 1,
        first_token=first_token_wall - posted[1],
        first_visible=shown[0].at - posted[0],
        final=final.at - posted[0],
    )


async def run_link(
    link: Link, args: argparse.Namespace, database_url: str, llm: tuple[str, str], seed: int
) -> LinkResult:
    settings = stack_settings(
        database_url,
        args.redis_url,
        *llm,
        llm_max_tokens=max(args.answer_tokens),
        request_deadline_seconds=180.0,
        # The production cadence of partial texts and Telegram's per-chat rate, not the test stack's quick ones.
        partial_interval_seconds=SETTINGS_DEFAULTS["partial_interval_seconds"].default,
        partial_min_chars=SETTINGS_DEFAULTS["partial_min_chars"].default,
        telegram_chat_rate=SETTINGS_DEFAULTS["telegram_chat_rate"].default,
        worker_concurrency=args.concurrency,
        # The model's pace is imitated in bytes a second of one event a token (SSE_BYTES_PER_TOKEN).
        llm_stream_interval=1,
    )
    shape = link.shape(seed)
    async with (
        running_stack(settings, workers=0, preview_policy=POLICIES[args.policy], api_link=shape) as stack,
        watched_worker(
            stack, LinkShape(bytes_per_second=args.model_pace * SSE_BYTES_PER_TOKEN), args.answer_tokens
        ) as queue,
    ):
        posted = await converse(stack, args.conversations, args.spacing)
        await eventually(lambda: all_answered(stack, args.conversations), timeout=600, interval=0.5)
        await asyncio.sleep(1.0)  # the last final messages are still on the wire when their rows say answered
        first_tokens = await first_token_times(stack, queue)
        answers = [
            answer_of([c for c in stack.api.calls if int(c.params.get("chat_id", 0)) == chat], at, first_tokens[chat])
            for chat, at in posted.items()
        ]
        assert stack.api_link is not None
        print_generated(queue.generated)
        return LinkResult(link, answers, stack.api_link.bytes_up)


def print_generated(generated: dict[int, list[tuple[int, str]]]) -> None:
    """What the model wrote for each length asked: a random model may still stop by itself."""
    for asked, written in sorted(generated.items()):
        reasons = sorted({reason for _, reason in written})
        mean = statistics.mean(tokens for tokens, _ in written)
        print(f"{asked} tokens asked: {len(written)} answers, {mean:.0f} tokens written on average, stopped: {reasons}")


def p(values: Sequence[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]


def print_table(results: Sequence[LinkResult], policy: str) -> None:
    print(f"\npreview policy: {policy}")
    print(
        "| link | answers | answer bytes mean | calls / answer | sent ÷ answer bytes | wire ÷ answer bytes "
        "| wire bytes / call | previews / answer | first token p50 "
        "| first visible p50 / p95 | visible − first token p50 / p95 | visible ≤ first token + RTT "
        "| final answer p50 / p95 |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for result in results:
        answers = result.answers
        final_bytes = sum(a.final_bytes for a in answers)
        visible = [a.first_visible for a in answers]
        lag = [a.first_visible - a.first_token for a in answers]
        final = [a.final for a in answers]
        met = sum(result.met_goal(a) for a in answers) / len(answers)
        calls = sum(a.calls for a in answers)
        print(
            f"| {result.link.name} | {len(answers)} | {final_bytes / len(answers):.0f} | {calls / len(answers):.1f} "
            f"| {sum(a.sent_bytes for a in answers) / final_bytes:.2f} "
            f"| {result.wire_bytes_up / final_bytes:.2f} | {result.wire_bytes_up / calls:.0f} "
            f"| {statistics.mean(a.previews for a in answers):.1f} "
            f"| {p([a.first_token for a in answers], 50):.2f} "
            f"| {p(visible, 50):.2f} / {p(visible, 95):.2f} "
            f"| {p(lag, 50):.2f} / {p(lag, 95):.2f} "
            f"| {met:.0%} "
            f"| {p(final, 50):.2f} / {p(final, 95):.2f} |"
        )


def bucket_name(final_bytes: int) -> str:
    lower = max((edge for edge in LENGTH_BUCKETS if edge <= final_bytes), default=0)
    upper = min((edge for edge in LENGTH_BUCKETS if edge > final_bytes), default=None)
    if upper is None:
        return f"≥ {lower:,}"
    return f"< {upper:,}" if lower == 0 else f"{lower:,}–{upper:,}"


def print_lengths_table(results: Sequence[LinkResult]) -> None:
    """The bytes ratio by answer length: a call's fixed cost weighs on short answers, not on long ones."""
    print(
        "\n| link | answer bytes | answers | answer bytes mean | calls / answer | wire ÷ answer bytes "
        "| wire bytes / call | previews / answer | visible − first token p50 | visible ≤ first token + RTT |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for result in results:
        groups: dict[str, list[Answer]] = {}
        for answer in sorted(result.answers, key=lambda a: a.final_bytes):
            groups.setdefault(bucket_name(answer.final_bytes), []).append(answer)
        rows = [*groups.items(), ("all", result.answers)] if len(groups) > 1 else list(groups.items())
        for name, answers in rows:
            final_bytes = sum(a.final_bytes for a in answers)
            wire = sum(a.wire_bytes for a in answers)
            calls = sum(a.calls for a in answers)
            met = sum(result.met_goal(a) for a in answers) / len(answers)
            print(
                f"| {result.link.name} | {name} | {len(answers)} | {final_bytes / len(answers):.0f} "
                f"| {calls / len(answers):.1f} | {wire / final_bytes:.2f} | {wire / calls:.0f} "
                f"| {statistics.mean(a.previews for a in answers):.1f} "
                f"| {p([a.first_visible - a.first_token for a in answers], 50):.2f} | {met:.0%} |"
            )


@asynccontextmanager
async def model_server(args: argparse.Namespace) -> AsyncIterator[tuple[str, str]]:
    """(OpenAI base URL, model name): the one given, or vLLM serving the tests' tiny model for the run."""
    if args.llm_base_url:
        yield args.llm_base_url, args.model
        return
    settings = Settings().model_copy(update={"worker_concurrency": args.concurrency})
    context = context_tokens(args.answer_tokens)
    with tempfile.TemporaryDirectory() as folder:
        model_dir = await asyncio.to_thread(build_tiny_model_dir, settings.vllm_venv, Path(folder) / "tiny")
        set_positions(model_dir, context)
        options = replace(VllmOptions.for_settings(settings, model_dir, "soro-tiny"), max_model_len=context)
        async with VllmServer(options) as server:
            yield server.base_url, server.model


def context_tokens(lengths: Sequence[int]) -> int:
    """The tiny model's own context, or one that fits the longest answer after its prompt (in 256s)."""
    return max(TINY_CONTEXT, math.ceil((max(lengths) + PROMPT_ROOM) / 256) * 256)


def set_positions(model_dir: Path, positions: int) -> None:
    config_path = model_dir / "config.json"
    config = json.loads(config_path.read_text())
    config["max_position_embeddings"] = max(config["max_position_embeddings"], positions)
    config_path.write_text(json.dumps(config, indent=2))


async def main(args: argparse.Namespace) -> list[LinkResult]:
    results = []
    async with model_server(args) as llm:
        for seed, name in enumerate(args.links):
            with tempfile.TemporaryDirectory() as scratch:
                database_url = f"sqlite+aiosqlite:///{Path(scratch) / 'soro.db'}"
                await asyncio.to_thread(upgrade, database_url)
                started = time.monotonic()
                results.append(await run_link(LINKS[name], args, database_url, llm, seed))
                print(f"{name}: {time.monotonic() - started:.0f} s", flush=True)
    print_table(results, args.policy)
    print_lengths_table(results)
    return results


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--links", nargs="+", choices=list(LINKS), default=list(LINKS))
    parser.add_argument("--policy", choices=list(POLICIES), default="adaptive")
    parser.add_argument("--conversations", type=int, default=50)
    parser.add_argument("--spacing", type=float, default=0.4, help="seconds between two conversations' questions")
    parser.add_argument(
        "--model-pace", type=float, default=30.0, help="tokens a second of each answer (the tiny model is far faster)"
    )
    parser.add_argument(
        "--answer-tokens",
        type=int,
        nargs="+",
        default=list(ANSWER_TOKENS),
        help="answer lengths in tokens, given to the conversations in turn (the tiny model's are ~2 bytes each)",
    )
    parser.add_argument("--concurrency", type=int, default=16, help="the worker's, and vLLM's --max-num-seqs")
    parser.add_argument("--redis-url", default=Settings().redis_url)
    parser.add_argument("--llm-base-url", help="use this OpenAI-compatible server instead of starting vLLM")
    parser.add_argument("--model", default="soro", help="served model name with --llm-base-url")
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
