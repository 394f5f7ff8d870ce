"""SMS segment arithmetic: what goes out always fits the paid budget and never cuts a word or a number."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tajik.sms import (
    ELLIPSIS,
    GSM7_ELLIPSIS,
    SmsEncoding,
    _breaks_after,
    char_budget,
    encoding_of,
    fit_to_budget,
    segment_count,
    split_segments,
    units,
)

TAJIK = "абвгғдеёжзиӣйкқлмнопрстуӯфхҳчҷшъэюяАБВГҒДЕЁЖЗИӢЙКҚЛМНОПРСТУӮФХҲЧҶШЪЭЮЯ"
LATIN = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
DIGITS = "0123456789"
PUNCTUATION = ".,!?;:-—«»()"
EXTENSION = "€[]{}|^~\\"

# Words no longer than a segment, so the only exception to "never cut a word" cannot apply.
tajik_words = st.text(alphabet=TAJIK + DIGITS + PUNCTUATION, min_size=1, max_size=18)
latin_words = st.text(alphabet=LATIN + DIGITS + PUNCTUATION + EXTENSION, min_size=1, max_size=18)
mixed_words = st.text(alphabet=TAJIK + LATIN + DIGITS + PUNCTUATION + "😀🇹🇯", min_size=1, max_size=18)
separators = st.sampled_from([" ", " ", " ", "\n", "\n\n", " \u00a0", "  "])
budgets = st.integers(min_value=1, max_value=6)


@st.composite
def answers(draw: st.DrawFn, words: st.SearchStrategy[str] = mixed_words) -> str:
    chosen = draw(st.lists(words, min_size=1, max_size=120))
    out = chosen[0]
    for word in chosen[1:]:
        out += draw(separators) + word
    return out


any_words = st.one_of(tajik_words, latin_words, mixed_words)


def segment_size(text: str, parts: int) -> int:
    encoding = encoding_of(text)
    return encoding.single if parts == 1 else encoding.concatenated


def marker_of(text: str) -> str:
    return GSM7_ELLIPSIS if encoding_of(text) is SmsEncoding.GSM7 else ELLIPSIS


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(answers(tajik_words), answers(latin_words), answers(mixed_words)), segments=budgets)
def test_delivered_text_fits_the_budget_and_its_parts_reassemble(text: str, segments: int) -> None:
    delivered, trimmed = fit_to_budget(text, segments)
    assert segment_count(delivered) <= segments
    assert units(delivered) <= char_budget(segments, encoding_of(delivered))
    parts = split_segments(delivered)
    assert "".join(parts) == delivered
    assert len(parts) <= segments
    for part in parts:
        assert units(part, encoding_of(delivered)) <= segment_size(delivered, len(parts))
    if not trimmed:
        assert delivered == text.strip()
    else:
        assert delivered.endswith(marker_of(delivered))


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(answers(tajik_words), answers(latin_words), answers(mixed_words)), segments=budgets)
def test_a_trimmed_answer_ends_on_a_word_boundary_of_the_original(text: str, segments: int) -> None:
    delivered, trimmed = fit_to_budget(text, segments)
    if not trimmed:
        return
    body = delivered.removesuffix(marker_of(delivered)).rstrip()
    original = text.strip()
    assert body, "a trimmed answer kept nothing"
    assert original.startswith(body)
    following = original[len(body)]
    # The next character of the original is a space or punctuation the trim dropped: no word is cut.
    assert following.isspace() or following in ",;:-—–", (body[-10:], original[len(body) : len(body) + 10])


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(answers(tajik_words), answers(latin_words), answers(mixed_words)))
def test_parts_break_only_between_words(text: str) -> None:
    parts = split_segments(text)
    assert "".join(parts) == text
    boundary = 0
    for part, following in itertools.pairwise(parts):
        boundary += len(part)
        # A part ends after a space, or the next part starts with one: the word on the boundary is whole. Only
        # a run no space may break (one long word, or digits grouped by spaces: "10 000") over a segment is cut.
        at_space = part[-1] in " \n" or following[0] in " \n"
        assert at_space or _unbreakable_run(text, boundary) > encoding_of(text).concatenated, (
            part[-10:],
            following[:10],
        )


def _unbreakable_run(text: str, at: int) -> int:
    """Length of the stretch around ``at`` that holds no space a line may break at."""
    start = at
    while start > 0 and not _breaks_after(text, start - 1):
        start -= 1
    end = at
    while end < len(text) and not _breaks_after(text, end):
        end += 1
    return end - start


@settings(max_examples=200, deadline=None)
@given(text=st.text(min_size=0, max_size=800), segments=budgets)
def test_any_text_at_all_fits_after_trimming(text: str, segments: int) -> None:
    delivered, _ = fit_to_budget(text, segments)
    assert segment_count(delivered) <= segments
    assert len(split_segments(delivered)) <= segments


def test_a_long_tajik_answer_is_trimmed_to_three_ucs2_segments_at_a_word() -> None:
    sentence = "Душанбе пойтахти Ҷумҳурии Тоҷикистон буда, дар водии Ҳисор ҷойгир аст ва 1 000 000 аҳолӣ дорад"
    text = ", ".join([sentence] * 12)
    assert len(text) > 1000
    delivered, trimmed = fit_to_budget(text, 3)
    assert trimmed
    assert encoding_of(delivered) is SmsEncoding.UCS2
    assert units(delivered) <= 3 * 67
    assert len(delivered) > 150, "trimming threw away far more than it had to"
    assert delivered.endswith(ELLIPSIS)
    assert text.startswith(delivered.removesuffix(ELLIPSIS).rstrip())
    assert delivered.count("1") == delivered.count("1 000 000")


def test_a_number_with_spaces_between_its_digit_groups_is_never_split() -> None:
    text = "Масофа " + "то Хуҷанд 1 000 000 метр аст " * 10
    for segments in (1, 2, 3):
        delivered, _ = fit_to_budget(text, segments)
        assert delivered.count("1") == delivered.count("1 000 000") > 0, delivered
        parts = split_segments(delivered)
        for part, following in itertools.pairwise(parts):
            assert not (part[-2:-1].isdigit() and following[:1].isdigit()), (part[-10:], following[:10])
            assert not (part[-1:].isdigit() and following[:2].strip().isdigit()), (part[-10:], following[:10])


def test_a_sentence_end_near_the_limit_is_preferred_to_a_word_boundary() -> None:
    first = "Ҳисоб кардан осон аст."
    text = f"{first} {'Ин ҷумлаи дуюм хеле дароз аст ва ба як сегмент намеғунҷад' * 2}"
    delivered, trimmed = fit_to_budget(text, 1)
    assert trimmed
    assert delivered.startswith(first)
    assert units(delivered) <= 70


def test_latin_text_keeps_the_gsm7_budget() -> None:
    text = "Dushanbe is the capital of Tajikistan. " * 4  # 156 characters: one GSM-7 segment
    assert encoding_of(text) is SmsEncoding.GSM7
    assert segment_count(text.strip()) == 1
    assert fit_to_budget(text, 1) == (text.strip(), False)
    longer = "Dushanbe is the capital of Tajikistan. " * 20
    delivered, trimmed = fit_to_budget(longer, 2)
    assert trimmed
    assert encoding_of(delivered) is SmsEncoding.GSM7
    assert delivered.endswith(GSM7_ELLIPSIS)
    assert 153 < units(delivered) <= 2 * 153


@pytest.mark.parametrize(
    ("text", "segments"),
    [("а" * 70, 1), ("а" * 71, 2), ("а" * 134, 2), ("а" * 135, 3), ("a" * 160, 1), ("a" * 161, 2), ("€" * 80, 1)],
)
def test_segment_count_follows_3gpp(text: str, segments: int) -> None:
    assert segment_count(text) == segments


def test_a_word_longer_than_the_budget_is_the_only_thing_ever_cut() -> None:
    word = "Ҷ" * 300
    delivered, trimmed = fit_to_budget(word, 2)
    assert trimmed
    assert segment_count(delivered) <= 2
    assert delivered.startswith("Ҷ" * 100)
