"""Benchmark files are read in the format they are published in."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from training.eval.records import DatasetError, read_records

ROWS = [
    {"question": "Муаллифи «Шоҳнома» кист?", "answer": "C"},
    {"question": "Забони давлатӣ кадом аст?", "answer": "A"},
]


def test_jsonl_json_csv_tsv_and_parquet_give_the_same_rows(tmp_path: Path) -> None:
    (tmp_path / "rows.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ROWS), encoding="utf-8"
    )
    (tmp_path / "rows.json").write_text(json.dumps(ROWS, ensure_ascii=False), encoding="utf-8")
    for name, sep in (("rows.csv", ","), ("rows.tsv", "\t")):
        lines = [f"question{sep}answer", *(f"{r['question']}{sep}{r['answer']}" for r in ROWS)]
        (tmp_path / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    pq.write_table(pa.Table.from_pylist(ROWS), tmp_path / "rows.parquet")

    for name in ("rows.jsonl", "rows.json", "rows.csv", "rows.tsv", "rows.parquet"):
        assert read_records(tmp_path / name) == ROWS, name


def test_a_missing_file_or_unknown_format_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no such file"):
        read_records(tmp_path / "absent.jsonl")
    (tmp_path / "rows.xlsx").write_bytes(b"")
    with pytest.raises(DatasetError, match="unsupported file type"):
        read_records(tmp_path / "rows.xlsx")
