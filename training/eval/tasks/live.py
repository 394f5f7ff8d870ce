"""Checks of the answers users get: in Tajik when asked in Tajik, within the SMS budget, and how fast.

They send the service's system prompt (and, for SMS, the length instruction) with each prompt, as the bot
does, so they measure a model as deployed rather than as a benchmark sees it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tajik import char_budget, segment_count
from training.common.language import reply_language
from training.eval.backends.base import Backend, Generation, Messages, UnsupportedByBackend
from training.eval.records import DatasetError, read_records
from training.eval.results import Metric, TaskResult


def load_prompts(path: Path, field: str) -> list[str]:
    """Prompts from a text file (one a line) or from the ``field`` of each record (JSONL, CSV, Parquet …)."""
    if path.suffix.lower() == ".txt":
        if not path.is_file():
            raise DatasetError(f"{path}: no such file")
        return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    prompts = [str(record[field]).strip() for record in read_records(path) if str(record.get(field) or "").strip()]
    if not prompts:
        raise DatasetError(f"{path}: no record has a non-empty {field!r}")
    return prompts


def conversation(prompt: str, system_prompt: str) -> Messages:
    return [{"role": "system", "content": system_prompt}, {"role": "user", "content": prompt}]


def _details(prompts: Sequence[str], generations: Sequence[Generation]) -> list[dict[str, object]]:
    return [
        {
            "id": str(i),
            "prompt": prompt,
            "reply": generation.text,
            **({} if generation.seconds is None else {"seconds": round(generation.seconds, 3)}),
        }
        for i, (prompt, generation) in enumerate(zip(prompts, generations, strict=True))
    ]


async def score_tajik_replies(
    name: str, prompts: Sequence[str], backend: Backend, *, system_prompt: str, max_tokens: int
) -> TaskResult:
    generations = await backend.generate([conversation(p, system_prompt) for p in prompts], max_tokens=max_tokens)
    # The short-text decision the SFT filter uses too: printable text, real Tajik words, no foreign letters.
    judged = [reply_language(generation.text) for generation in generations]
    return TaskResult(
        task=name,
        kind="tajik_replies",
        scoring="generation",
        item_ids=[str(i) for i in range(len(prompts))],
        metrics=[Metric("tajik_share", "mean", True, [[1.0 if verdict.is_tajik else 0.0] for verdict in judged])],
        items=[
            {
                **detail,
                "tajik": verdict.is_tajik,
                "language": verdict.reason,
                "language_score": round(verdict.score, 3),
                "word_evidence": round(verdict.word_evidence, 3),
                "printable_share": round(verdict.printable_share, 3),
            }
            for detail, verdict in zip(_details(prompts, generations), judged, strict=True)
        ],
    )


def sms_system_prompt(system_prompt: str, instruction: str, segments: int) -> str:
    return f"{system_prompt}\n\n{instruction.format(chars=char_budget(segments))}"


async def score_sms_budget(
    name: str,
    prompts: Sequence[str],
    backend: Backend,
    *,
    system_prompt: str,
    instruction: str,
    segments: int,
    max_tokens: int,
) -> TaskResult:
    """Share of answers the service can send whole: non-empty and within ``segments`` UCS-2 segments."""
    system = sms_system_prompt(system_prompt, instruction, segments)
    generations = await backend.generate([conversation(p, system) for p in prompts], max_tokens=max_tokens)
    used = [segment_count(generation.text) if generation.text else 0 for generation in generations]
    return TaskResult(
        task=name,
        kind="sms_budget",
        scoring="generation",
        item_ids=[str(i) for i in range(len(prompts))],
        metrics=[
            Metric("within_budget", "mean", True, [[1.0 if 0 < n <= segments else 0.0] for n in used]),
            Metric("segments_mean", "mean", False, [[float(n)] for n in used]),
        ],
        items=[{**detail, "segments": n} for detail, n in zip(_details(prompts, generations), used, strict=True)],
    )


async def score_latency(
    name: str,
    prompts: Sequence[str],
    backend: Backend,
    *,
    system_prompt: str,
    max_tokens: int,
    concurrency: int,
) -> TaskResult:
    """Percentiles of the time to the whole answer and to its first token, ``concurrency`` requests at a time.

    A reply with no token at all counts its whole time as time to first token: the user saw nothing sooner.
    Only a backend that times each request on its own (a served model, streamed) is measured: a local model's
    batch time given to every item would make percentiles and their intervals say nothing.
    """
    if not backend.measures_latency:
        raise UnsupportedByBackend(
            f"latency is timed per streamed request on a served model; a {backend.kind} backend generates in "
            "batches and gives no per-request times (run this task against the endpoint that serves the model)"
        )
    generations = await backend.generate(
        [conversation(p, system_prompt) for p in prompts], max_tokens=max_tokens, concurrency=concurrency
    )
    total = [[_timed(generation.seconds)] for generation in generations]
    first = [
        [_timed(generation.seconds if generation.first_token_seconds is None else generation.first_token_seconds)]
        for generation in generations
    ]
    return TaskResult(
        task=name,
        kind="latency",
        scoring="generation",
        item_ids=[str(i) for i in range(len(prompts))],
        metrics=[
            Metric("latency_p50_s", "p50", False, total),
            Metric("latency_p90_s", "p90", False, total),
            Metric("latency_p99_s", "p99", False, total),
            Metric("first_token_p50_s", "p50", False, first),
            Metric("first_token_p90_s", "p90", False, first),
        ],
        items=[
            {**detail, "first_token_seconds": row[0], "completion_tokens": generation.completion_tokens}
            for detail, row, generation in zip(_details(prompts, generations), first, generations, strict=True)
        ],
    )


def _timed(seconds: float | None) -> float:
    if seconds is None:
        raise UnsupportedByBackend("the backend returned a reply without its time")
    return seconds
