"""Aggregating per-item statistics into a score, and bootstrap confidence intervals of scores and differences.

Every metric keeps, for each item, the numbers its score is computed from (its *sufficient statistics*), so a
score can be recomputed on any resample of the items: accuracy from 0/1 per item, bits per character from
bits and characters per passage, chrF++ from sacrebleu's character and word n-gram counts per segment,
latency percentiles from one duration per request.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from sacrebleu.metrics.chrf import CHRF

Aggregate = Literal["mean", "ratio", "chrf++", "p50", "p90", "p99"]
Samples = npt.NDArray[np.float64]  # one row of statistics per item
Interval = tuple[float, float]

CHRF_WORD_ORDER = 2  # chrF++: character n-grams up to 6 plus word uni- and bigrams


def chrf_segment_statistics(hypotheses: Sequence[str], references: Sequence[str]) -> list[list[float]]:
    """sacrebleu's per-segment chrF++ statistics; summed over segments they give the corpus score."""
    metric = _chrf()
    # sacrebleu's own paired bootstrap works on these per-segment statistics; there is no public name for them.
    stats = metric._extract_corpus_statistics(list(hypotheses), [list(references)])
    return [[float(value) for value in row] for row in stats]


def _chrf() -> CHRF:
    from sacrebleu.metrics.chrf import CHRF

    return CHRF(word_order=CHRF_WORD_ORDER)


def _chrf_from_totals(samples: Samples) -> float:
    totals = samples.sum(axis=0)
    return float(_chrf()._compute_score_from_stats([round(v) for v in totals]).score)


def aggregate(kind: Aggregate, samples: Samples) -> float:
    """The score of a metric from its per-item statistics."""
    if len(samples) == 0:
        return math.nan
    if kind == "mean":
        return float(samples[:, 0].mean())
    if kind == "ratio":
        denominator = float(samples[:, 1].sum())
        return float(samples[:, 0].sum()) / denominator if denominator else math.nan
    if kind == "chrf++":
        return _chrf_from_totals(samples)
    percentile = {"p50": 50, "p90": 90, "p99": 99}[kind]
    return float(np.percentile(samples[:, 0], percentile))


def _resampled(
    size: int, resamples: int, seed: int, score: Callable[[npt.NDArray[np.intp]], float]
) -> npt.NDArray[np.float64]:
    rng = np.random.default_rng(seed)
    return np.array([score(rng.integers(0, size, size)) for _ in range(resamples)], dtype=np.float64)


def bootstrap_interval(
    kind: Aggregate, samples: Samples, *, resamples: int = 1000, level: float = 0.95, seed: int = 0
) -> Interval:
    """Percentile bootstrap interval of the score: resample items with replacement, recompute the score."""
    if len(samples) < 2:
        return (math.nan, math.nan)
    scores = _resampled(len(samples), resamples, seed, lambda index: aggregate(kind, samples[index]))
    return _percentile_interval(scores, level)


def difference_interval(
    kind: Aggregate,
    baseline: Samples,
    other: Samples,
    *,
    paired: bool,
    resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Bootstrap interval of ``score(other) - score(baseline)``.

    Paired (the same items in the same order in both runs) resamples one set of item indices for both, which
    removes the item-difficulty noise both runs share; unpaired resamples each run on its own.
    """
    if len(baseline) < 2 or len(other) < 2:
        return (math.nan, math.nan)
    if paired:
        if len(baseline) != len(other):
            raise ValueError("paired bootstrap needs the same items in both runs")
        scores = _resampled(
            len(baseline),
            resamples,
            seed,
            lambda index: aggregate(kind, other[index]) - aggregate(kind, baseline[index]),
        )
    else:
        rng = np.random.default_rng(seed)
        scores = np.array(
            [
                aggregate(kind, other[rng.integers(0, len(other), len(other))])
                - aggregate(kind, baseline[rng.integers(0, len(baseline), len(baseline))])
                for _ in range(resamples)
            ],
            dtype=np.float64,
        )
    return _percentile_interval(scores, level)


def _percentile_interval(scores: npt.NDArray[np.float64], level: float) -> Interval:
    finite = scores[np.isfinite(scores)]
    if len(finite) == 0:
        return (math.nan, math.nan)
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return (float(low), float(high))


def within_noise(interval: Interval) -> bool:
    """A difference is within noise when its confidence interval contains zero (or has too few items to tell)."""
    low, high = interval
    return math.isnan(low) or math.isnan(high) or low <= 0.0 <= high
