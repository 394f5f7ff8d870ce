"""PDF text layers: paragraphs rebuilt from hard-wrapped lines, page numbers dropped, verse kept line by line."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.data.pdf import extract_pdf_text, reflow


def test_lines_that_continue_a_sentence_are_joined() -> None:
    lines = [
        "1. Барномаи давлатии амалӣ намудани технологияҳои иттилоотӣ - ",
        "коммуникатсионӣ дар муассисаҳои таҳсилоти умумӣ бо технологияҳои иттилоотӣ-",
        "коммуникатсионӣ таҳия гардидааст.",
        "2. Барнома аз меъёрҳои Конститутсия асос гирифтааст.",
    ]
    assert reflow(lines) == [
        "1. Барномаи давлатии амалӣ намудани технологияҳои иттилоотӣ - коммуникатсионӣ дар муассисаҳои таҳсилоти "
        "умумӣ бо технологияҳои иттилоотӣ-коммуникатсионӣ таҳия гардидааст.",
        "2. Барнома аз меъёрҳои Конститутсия асос гирифтааст.",
    ]


def test_verse_and_headings_keep_their_lines() -> None:
    verse = ["Дабираш биёвард аҳди каён,", "Набишта бар он пурбаҳо парниён.", "ҚАРОР", "Дар бораи маориф"]
    assert reflow(verse) == verse


@pytest.mark.shared_data
def test_pages_come_in_order_without_their_numbers(shared_data: Path) -> None:
    with (shared_data / "pdf" / "shohnoma_excerpt_legacy_font.pdf").open("rb") as stream:
        pdf = extract_pdf_text(stream)
    assert (pdf.pages, pdf.pages_with_text) == (5, 5)
    lines = pdf.text.splitlines()
    assert lines[0] == "Дабираш биёвард ањди каён,"  # still the legacy font (њ for ҳ): repair is normalisation's job
    assert not any(line.strip().isdigit() for line in lines)
