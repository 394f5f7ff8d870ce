"""The tasks of the suite: each reads its local files, asks the backend, and returns a :class:`TaskResult`."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

from training.eval.backends.base import Backend
from training.eval.config import (
    BelebeleTask,
    BpcTask,
    EnglishMcqTask,
    LatencyTask,
    Scoring,
    Sib200Task,
    SmsBudgetTask,
    TajikRepliesTask,
    TajlibTask,
    TalimTask,
    TaskConfig,
    TranslationTask,
)
from training.eval.results import TaskResult
from training.eval.tasks import bpc, live, mcq, translation


async def run_task(
    task: TaskConfig,
    backend: Backend,
    *,
    data_root: Path,
    scoring: Scoring,
    system_prompt: str,
    limit: int | None = None,
) -> TaskResult:
    """Run one task; ``limit`` (the suite's) applies where the task sets none."""
    started = time.perf_counter()
    result = await _run(task, backend, data_root, scoring, system_prompt, task.limit or limit)
    return replace(result, seconds=round(time.perf_counter() - started, 3))


T = TypeVar("T")


def _first(limit: int | None, items: list[T]) -> list[T]:
    return items[:limit] if limit else items


def _use_loglikelihood(scoring: Scoring, backend: Backend) -> bool:
    """``auto`` scores by log-likelihood where that is the backend's natural way (in-process); asked for
    explicitly, an endpoint scores by log-likelihood too (vLLM's prompt log-probabilities), or says why not."""
    return scoring == "loglikelihood" or (scoring == "auto" and backend.supports_loglikelihood)


async def _run(
    task: TaskConfig, backend: Backend, data_root: Path, scoring: Scoring, system_prompt: str, limit: int | None
) -> TaskResult:
    if isinstance(task, BelebeleTask | Sib200Task | TajlibTask | TalimTask | EnglishMcqTask):
        builder, language = _choice_builder(task)
        items = _first(limit, mcq.load_items(data_root / task.path, builder))
        return await mcq.score_choices(
            task.name,
            task.type,
            items,
            backend,
            use_loglikelihood=_use_loglikelihood(scoring, backend),
            language=language,
        )
    if isinstance(task, TranslationTask):
        segments = _first(
            limit,
            translation.load_segments(
                data_root / task.path, task.source, task.target, split=task.split, fields=task.fields
            ),
        )
        return await translation.score_translation(
            task.name, segments, task.source, task.target, backend, max_tokens=task.max_tokens
        )
    if isinstance(task, BpcTask):
        passages = _first(limit, bpc.load_passages(data_root, task.paths, task.max_chars))
        return await bpc.score_bits_per_character(task.name, passages, backend)
    prompts = _first(limit, live.load_prompts(data_root / task.prompts.path, task.prompts.field))
    system = task.system_prompt or system_prompt
    if isinstance(task, TajikRepliesTask):
        return await live.score_tajik_replies(
            task.name, prompts, backend, system_prompt=system, max_tokens=task.max_tokens
        )
    if isinstance(task, SmsBudgetTask):
        return await live.score_sms_budget(
            task.name,
            prompts,
            backend,
            system_prompt=system,
            instruction=task.instruction,
            segments=task.segments,
            max_tokens=task.max_tokens,
        )
    if isinstance(task, LatencyTask):
        return await live.score_latency(
            task.name, prompts, backend, system_prompt=system, max_tokens=task.max_tokens, concurrency=task.concurrency
        )
    raise TypeError(f"unknown task config {task!r}")


def _choice_builder(
    task: BelebeleTask | Sib200Task | TajlibTask | TalimTask | EnglishMcqTask,
) -> tuple[mcq.ItemBuilder, mcq.Language]:
    if isinstance(task, BelebeleTask):
        return mcq.belebele_item, "tg"
    if isinstance(task, Sib200Task):
        return mcq.sib200_item, "tg"
    if isinstance(task, TajlibTask):
        return mcq.tajlib_item, "tg"
    if isinstance(task, TalimTask):
        return mcq.talim_item, "tg"
    return (mcq.mmlu_item if task.layout == "mmlu" else mcq.arc_item), "en"
