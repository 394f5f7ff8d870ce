"""chrF++ as sacrebleu computes it, bootstrap intervals, and when a difference is within noise."""

from __future__ import annotations

import numpy as np
import pytest
import sacrebleu

from training.eval.stats import (
    aggregate,
    bootstrap_interval,
    chrf_segment_statistics,
    difference_interval,
    within_noise,
)

# UDHR article 1, first sentence, and a paraphrase of it.
REFERENCE = "Тамоми одамон озод ва аз лиҳози шарафу ҳуқуқ ба ҳам баробар ба дунё меоянд."
HYPOTHESIS = "Ҳамаи одамон озод ва аз ҷиҳати шаъну ҳуқуқ баробар ба дунё меоянд."
SACREBLEU_CHRF_PLUS_PLUS = 63.16379335133172  # sacrebleu 2.6: corpus_chrf([HYPOTHESIS], [[REFERENCE]], word_order=2)


def test_chrf_plus_plus_equals_sacrebleus_value_on_a_fixed_pair() -> None:
    stats = np.asarray(chrf_segment_statistics([HYPOTHESIS], [REFERENCE]), dtype=np.float64)
    assert aggregate("chrf++", stats) == pytest.approx(SACREBLEU_CHRF_PLUS_PLUS, abs=1e-9)
    assert aggregate("chrf++", stats) == pytest.approx(
        sacrebleu.corpus_chrf([HYPOTHESIS], [[REFERENCE]], word_order=2).score, abs=1e-9
    )


def test_corpus_chrf_from_summed_segment_statistics_equals_sacrebleus_corpus_score() -> None:
    hypotheses = [HYPOTHESIS, "Салом", "Ҳар як инсон ҳуқуқи ҳаёт дорад."]
    references = [REFERENCE, "Салом, дӯстам", "Ҳар як инсон ба ҳаёт, озодӣ ва дахлнопазирии шахсӣ ҳуқуқ дорад."]
    stats = np.asarray(chrf_segment_statistics(hypotheses, references), dtype=np.float64)
    expected = sacrebleu.corpus_chrf(hypotheses, [references], word_order=2).score
    assert aggregate("chrf++", stats) == pytest.approx(expected, abs=1e-9)
    assert aggregate("chrf++", stats) != pytest.approx(
        np.mean(
            [sacrebleu.sentence_chrf(h, [r], word_order=2).score for h, r in zip(hypotheses, references, strict=True)]
        )
    )


def test_ratio_and_percentile_aggregates() -> None:
    assert aggregate("ratio", np.array([[10.0, 4.0], [2.0, 2.0]])) == 2.0  # 12 bits over 6 characters
    assert aggregate("p50", np.array([[1.0], [3.0], [2.0]])) == 2.0
    assert aggregate("mean", np.array([[1.0], [0.0], [1.0], [1.0]])) == 0.75


def test_the_bootstrap_interval_holds_the_score_and_narrows_with_more_items() -> None:
    rng = np.random.default_rng(1)
    small = rng.binomial(1, 0.6, size=(40, 1)).astype(np.float64)
    large = rng.binomial(1, 0.6, size=(1000, 1)).astype(np.float64)
    for samples in (small, large):
        low, high = bootstrap_interval("mean", samples)
        assert low <= aggregate("mean", samples) <= high
    assert np.subtract(*bootstrap_interval("mean", large)[::-1]) < np.subtract(*bootstrap_interval("mean", small)[::-1])


def test_a_small_difference_on_few_items_is_within_noise_and_a_large_one_is_not() -> None:
    baseline = np.array([[1.0]] * 12 + [[0.0]] * 8)  # 60 %
    one_more = baseline.copy()
    one_more[12] = 1.0  # 65 %: one item flipped
    much_better = np.ones_like(baseline)  # 100 %
    assert within_noise(difference_interval("mean", baseline, one_more, paired=True))
    assert not within_noise(difference_interval("mean", baseline, much_better, paired=True))
    assert not within_noise(difference_interval("mean", baseline, much_better, paired=False))
