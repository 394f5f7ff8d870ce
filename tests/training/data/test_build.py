"""The whole curation pipeline on real Tajik data: what comes out, what is removed and why."""

from __future__ import annotations

import difflib
import itertools
import json
import re
from pathlib import Path
from typing import Any

import pytest

from tajik.letters import LEGACY_LETTERS
from training.data.build import BuildResult
from training.data.stages import build_stages

from .conftest import EMAIL, IP, LOCAL_PHONE, PASSPORT, PHONE, RawCorpus, removed_documents

pytestmark = pytest.mark.shared_data


def _comparable(text: str) -> str:
    """How the expected PDF texts are compared: page markers dropped, all whitespace collapsed."""
    lines = [line for line in text.splitlines() if not line.startswith("=== ")]
    return re.sub(r"\s+", " ", "\n".join(lines)).strip()


def character_match(a: str, b: str) -> float:
    """difflib's ratio, 2·(matching characters) / (len(a) + len(b)), aligned word by word first.

    A character-level SequenceMatcher over two 30,000-character documents takes minutes; aligning words first
    and characters only inside the words that differ gives the same count in well under a second.
    """
    words_a, words_b = a.split(" "), b.split(" ")
    matched = 0
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, words_a, words_b, autojunk=False).get_opcodes():
        span_a, span_b = " ".join(words_a[i1:i2]), " ".join(words_b[j1:j2])
        if op == "equal":
            matched += len(span_a) + 1  # the words and the space after them
        else:
            blocks = difflib.SequenceMatcher(None, span_a, span_b, autojunk=False).get_matching_blocks()
            matched += sum(block.size for block in blocks)
    return min(1.0, 2 * matched / (len(a) + len(b)))


def _by_id(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["id"]: row for row in rows}


@pytest.mark.parametrize("name", ["govt_resolution_443_2017", "shohnoma_excerpt"])
def test_legacy_font_pdfs_come_out_as_their_expected_text(
    name: str, shard_rows: list[dict[str, Any]], shared_data: Path
) -> None:
    (row,) = [r for r in shard_rows if r["source"] == "pdfs" and r["id"].endswith(f"{name}_legacy_font.pdf")]
    expected = _comparable((shared_data / "pdf" / f"{name}_expected.txt").read_text(encoding="utf-8"))
    got = _comparable(row["text"])

    match = character_match(got, expected)

    assert match >= 0.995, f"{name}: {match:.4f} of characters match"
    assert row["legacy_font_repaired"] is True
    assert not any(ch in LEGACY_LETTERS for ch in row["text"])


def test_language_id_keeps_tajik_and_drops_other_languages(
    built_corpus: BuildResult, shard_rows: list[dict[str, Any]], raw_corpus: RawCorpus
) -> None:
    kept = _by_id(shard_rows)
    assert "keyboard-fallback" in kept, "Tajik typed on a Russian keyboard must be kept"
    assert kept["keyboard-fallback"]["language"] == "tg"
    assert all(row["language"] == "tg" and row["language_score"] >= 0.766 for row in shard_rows)

    removed = {doc["id"]: doc["metadata"] for doc in removed_documents(built_corpus, "language")}
    for lang in ("ru", "uz_Cyrl", "uz_Latn", "fa", "en"):
        assert f"udhr-{lang}" in removed, f"the {lang} declaration was not removed by language ID"
        assert f"udhr-{lang}" not in kept
    assert removed["udhr-ru"]["filter_reason"] == "language_ru"
    assert removed["udhr-uz_Cyrl"]["filter_reason"] == "language_uz"
    assert removed["udhr-fa"]["filter_reason"] == "language_fa"


def test_duplicates_and_near_duplicates_are_removed_across_sources(
    built_corpus: BuildResult, shard_rows: list[dict[str, Any]], raw_corpus: RawCorpus
) -> None:
    texts = [row["text"] for row in shard_rows]
    for original in (raw_corpus.exact_copy_of, raw_corpus.cross_source_copy_of):
        assert texts.count(raw_corpus.web_texts[original]) == 1

    kept_ids = {row["id"] for row in shard_rows}
    assert "exact-copy" not in kept_ids
    # The copy in the FineWeb-2 dump loses to the web source, which is listed first.
    assert not any(row["source"] == "fineweb2" and row["text"] == raw_corpus.web_texts["web-002"] for row in shard_rows)
    assert len({raw_corpus.near_copy_of, "near-copy"} & kept_ids) == 1

    exact = [doc["id"] for doc in removed_documents(built_corpus, "exact_dedup")]
    near = [doc["id"] for doc in removed_documents(built_corpus, "near_dedup")]
    assert "exact-copy" in exact or raw_corpus.exact_copy_of in exact
    assert any(doc_id in near for doc_id in ("near-copy", raw_corpus.near_copy_of))
    assert len(exact) + len(near) == 3


def test_pii_is_scrubbed(shard_rows: list[dict[str, Any]]) -> None:
    row = _by_id(shard_rows)["with-pii"]
    for secret in (PHONE, LOCAL_PHONE, EMAIL, IP, PASSPORT):
        assert secret not in row["text"]
        assert all(secret not in other["text"] for other in shard_rows)
    assert "+992 00 000 00 00" in row["text"] and "email@example.com" in row["text"]


def test_documents_sharing_an_eval_passage_are_dropped(
    built_corpus: BuildResult, shard_rows: list[dict[str, Any]], raw_corpus: RawCorpus
) -> None:
    assert "contaminated" not in _by_id(shard_rows)
    (dropped,) = [doc for doc in removed_documents(built_corpus, "decontamination")]
    assert dropped["id"] == "contaminated"
    assert dropped["metadata"]["contaminated_task"] == "payom_qa"
    assert all(raw_corpus.eval_passage[:200] not in row["text"] for row in shard_rows)


def test_every_source_kind_reaches_the_shards_with_its_metadata(shard_rows: list[dict[str, Any]]) -> None:
    by_source: dict[str, list[dict[str, Any]]] = {}
    for row in shard_rows:
        by_source.setdefault(row["source"], []).append(row)
    assert set(by_source) == {"web", "fineweb2", "crawl", "pdfs", "school"}

    fineweb = by_source["fineweb2"][0]
    assert fineweb["kind"] == "fineweb2" and fineweb["url"].startswith("https://khovar.tj/")
    assert json.loads(fineweb["metadata"])["dump"] == "CC-MAIN-2024-10"
    assert json.loads(fineweb["metadata"])["source_language_score"] == 0.99

    (article,) = by_source["crawl"]  # the Russian page went at language ID, the image at reading
    assert article["url"] == "https://khovar.tj/payom-2016"
    assert "Ҳамаи ҳуқуқҳо ҳифз шудаанд" not in article["text"]  # the footer is not main content

    lessons = {row["subject"]: row for row in by_source["school"]}
    assert set(lessons) == {"математика", "адабиёт"}
    assert lessons["математика"]["grade"] == "5"
    assert json.loads(lessons["адабиёт"]["metadata"])["title"] == "Рӯдакӣ"
    assert lessons["адабиёт"]["path"].endswith("literature/7/rudaki.md")

    assert all(row["token_count"] == len(row["text"].split()) for row in shard_rows)


def test_report_accounts_for_every_document(built_corpus: BuildResult, shard_rows: list[dict[str, Any]]) -> None:
    report = built_corpus.report
    assert report is not None
    files = {kind: Path(path) for kind, path in report.files.items()}
    assert files["language_scores"].read_bytes().startswith(b"\x89PNG")
    assert "## Removed by language: language_ru" in files["samples"].read_text(encoding="utf-8")
    assert "| language | web |" in files["markdown"].read_text(encoding="utf-8")
    assert json.loads(files["json"].read_text(encoding="utf-8"))["sources"]

    totals = {s.source: s for s in report.sources}
    for source, s in totals.items():
        rows = [row for row in shard_rows if row["source"] == source]
        assert s.docs_out == len(rows)
        assert s.chars_out == sum(len(row["text"]) for row in rows)
        assert s.tokens_out == sum(row["token_count"] for row in shard_rows if row["source"] == source)
    assert totals["web"].docs_in == 30 + 10
    assert totals["crawl"].docs_in == 2  # the image record is no document

    # Each source's steps chain: what one step let through is what the next one got.
    for source in totals:
        steps = [row for row in report.steps if row.source == source]
        assert steps[-1].docs_out == totals[source].docs_out
        assert all(a.docs_out == b.docs_in for a, b in itertools.pairwise(steps))

    reasons = dict(report.removal_reasons)
    assert reasons["exact_duplicate"] + reasons["near_duplicate"] == 3
    assert reasons["contaminated_payom_qa"] == 1
    assert reasons["language_ru"] >= 2  # the declaration and the Russian web page
    assert report.pii_found["phone"] == 2 and report.pii_found["email"] == 1
    assert report.legacy_font_repaired == 2
    assert sum(sum(bins) for bins in report.language_score_bins.values()) == sum(
        row.docs_in for row in report.steps if row.step == "language"
    )


def test_stage_plan_follows_the_config(raw_corpus: RawCorpus, tmp_path: Path) -> None:
    from training.data.config import load_curation_config

    stages = build_stages(load_curation_config(raw_corpus.config(tmp_path / "plan")))
    assert [stage.slug for stage in stages] == [
        "prepare-web",
        "prepare-fineweb2",
        "prepare-crawl",
        "prepare-pdfs",
        "prepare-school",
        "exact-signatures",
        "exact-duplicates",
        "minhash-signatures",
        "minhash-buckets",
        "minhash-clusters",
        "decont-index",
        "finalise",
    ]
    pdf_steps = " ".join(str(step) for step in stages[3].pipeline)
    assert "Gopher" not in pdf_steps  # the PDF source skips the web-text quality filters
