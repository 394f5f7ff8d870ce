"""datatrove's Gopher and FineWeb quality filters, configured the way FineWeb-2 configures them per language.

Mirrors the filtering stage of FineWeb-2's pipeline (``fineweb-2-pipeline.py``): the paragraph and character
variants of the repetition filter off, the short-line check off, 0.1 for duplicated-line characters, and the
language's own thresholds and stop words, with at least two stop words per document. The word splitter is
the Tajik one (words.py), which splits like the spaCy tokenizer FineWeb-2 computed the thresholds with.
"""

from __future__ import annotations

from collections.abc import Callable

from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.pipeline.writers.disk_base import DiskWriter
from datatrove.utils.word_tokenizers import WordTokenizer

from training.data.config import QualityOptions

# Exclusion writers are made per filter, named after the step, so removed documents land in their own folders.
ExclusionWriterFactory = Callable[[str], DiskWriter]


def _pairs(pairs: list[list[float]]) -> tuple[tuple[int, float], ...]:
    return tuple((int(n), float(fraction)) for n, fraction in pairs)


def quality_filters(
    options: QualityOptions, words: str | WordTokenizer, exclusion_writer: ExclusionWriterFactory
) -> list[tuple[str, BaseFilter]]:
    """(step name, filter) for every enabled filter, in FineWeb-2's order."""
    from datatrove.pipeline.filters import FineWebQualityFilter, GopherQualityFilter, GopherRepetitionFilter

    filters: list[tuple[str, BaseFilter]] = []
    repetition = options.gopher_repetition
    if repetition.enabled:
        filters.append(
            (
                "gopher_repetition",
                GopherRepetitionFilter(
                    dup_line_frac=repetition.dup_line_frac,
                    dup_para_frac=repetition.dup_para_frac,
                    dup_line_char_frac=repetition.dup_line_char_frac,
                    dup_para_char_frac=repetition.dup_para_char_frac,
                    top_n_grams=_pairs(repetition.top_n_grams),
                    dup_n_grams=_pairs(repetition.dup_n_grams),
                    exclusion_writer=exclusion_writer("gopher_repetition"),
                    language=words,
                ),
            )
        )
    fineweb = options.fineweb_quality
    if fineweb.enabled:
        filters.append(
            (
                "fineweb_quality",
                FineWebQualityFilter(
                    line_punct_thr=fineweb.line_punct_thr,
                    new_line_ratio=fineweb.new_line_ratio,
                    char_duplicates_ratio=fineweb.char_duplicates_ratio,
                    short_line_thr=fineweb.short_line_thr,
                    exclusion_writer=exclusion_writer("fineweb_quality"),
                    language=words,
                ),
            )
        )
    gopher = options.gopher_quality
    if gopher.enabled:
        filters.append(
            (
                "gopher_quality",
                GopherQualityFilter(
                    min_doc_words=gopher.min_doc_words,
                    max_doc_words=gopher.max_doc_words,
                    min_avg_word_length=gopher.min_avg_word_length,
                    max_avg_word_length=gopher.max_avg_word_length,
                    max_non_alpha_words_ratio=gopher.max_non_alpha_words_ratio,
                    stop_words=gopher.stop_words,
                    min_stop_words=gopher.min_stop_words,
                    exclusion_writer=exclusion_writer("gopher_quality"),
                    language=words,
                ),
            )
        )
    return filters
