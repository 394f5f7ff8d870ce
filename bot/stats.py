"""What the operators read: the day's traffic and how each model fares (``/stats``, ``soro stats models``).

The 👍 share of a model comes with its Wilson score interval, so a candidate that looks better on a few dozen
votes is not mistaken for one that is.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.store.models import Feedback, Message, Request, RequestState, Role, Vote

UNKNOWN_MODEL = "unknown"


def wilson_interval(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95 % for z = 1.96); (0, 1) without trials."""
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass
class ModelStats:
    model: str
    answers: int = 0
    notices: int = 0  # turns that ended with an apology (deadline, failure) instead of an answer
    up: int = 0
    down: int = 0
    latencies: list[float] | None = None

    @property
    def votes(self) -> int:
        return self.up + self.down

    @property
    def up_share(self) -> float | None:
        return self.up / self.votes if self.votes else None

    @property
    def up_interval(self) -> tuple[float, float]:
        return wilson_interval(self.up, self.votes)

    @property
    def notice_rate(self) -> float | None:
        turns = self.answers + self.notices
        return self.notices / turns if turns else None

    @property
    def median_latency(self) -> float | None:
        return statistics.median(self.latencies) if self.latencies else None


@dataclass(frozen=True)
class Traffic:
    messages: int
    answers: int
    notices: int
    median_latency: float | None
    models: list[ModelStats]


async def traffic_since(sessions: async_sessionmaker[AsyncSession], since: datetime) -> Traffic:
    async with sessions() as session:
        messages = await session.scalar(
            select(func.count()).select_from(Message).where(Message.role == Role.USER, Message.created_at >= since)
        )
        models = await _models(session, since)
    latencies = [latency for m in models for latency in m.latencies or []]
    return Traffic(
        messages=int(messages or 0),
        answers=sum(m.answers for m in models),
        notices=sum(m.notices for m in models),
        median_latency=statistics.median(latencies) if latencies else None,
        models=models,
    )


async def _models(session: AsyncSession, since: datetime) -> list[ModelStats]:
    by_model: dict[str, ModelStats] = {}

    def of(model: str | None) -> ModelStats:
        name = model or UNKNOWN_MODEL
        return by_model.setdefault(name, ModelStats(name, latencies=[]))

    latencies: dict[str, list[float]] = defaultdict(list)
    answers = await session.execute(
        select(Message.model, Message.latency_ms).where(Message.role == Role.ASSISTANT, Message.created_at >= since)
    )
    for model, latency_ms in answers:
        stats = of(model)
        stats.answers += 1
        if latency_ms is not None:
            latencies[stats.model].append(latency_ms / 1000)
    notices = await session.execute(
        select(Request.model, func.count())
        .where(Request.state.in_([RequestState.EXPIRED, RequestState.FAILED]), Request.finished_at >= since)
        .group_by(Request.model)
    )
    for model, count in notices:
        of(model).notices += int(count)
    votes = await session.execute(
        select(Message.model, Feedback.vote, func.count())
        .join(Feedback, Feedback.message_id == Message.id)
        .where(Message.created_at >= since)
        .group_by(Message.model, Feedback.vote)
    )
    for model, vote, count in votes:
        stats = of(model)
        if vote is Vote.UP:
            stats.up += int(count)
        else:
            stats.down += int(count)
    for name, values in latencies.items():
        by_model[name].latencies = values
    return sorted(by_model.values(), key=lambda m: (-m.answers, m.model))


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} s"


def models_table(models: list[ModelStats]) -> str:
    """The comparison as a plain-text table, one model a row."""
    header = ("model", "answers", "👍", "👎", "👍 share", "95% interval", "notices", "median latency")
    rows = [header]
    for m in models:
        low, high = m.up_interval
        interval = f"{low:.0%}–{high:.0%}" if m.votes else "—"
        rows.append(
            (
                m.model,
                str(m.answers),
                str(m.up),
                str(m.down),
                percent(m.up_share),
                interval,
                percent(m.notice_rate),
                seconds(m.median_latency),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    if len(models) >= 2 and all(m.votes for m in models[:2]):
        first, second = models[0].up_interval, models[1].up_interval
        overlap = first[0] <= second[1] and second[0] <= first[1]
        lines.append(
            "The intervals overlap: the difference may be chance; collect more votes."
            if overlap
            else "The intervals do not overlap: the difference is unlikely to be chance."
        )
    return "\n".join(lines)
