"""Reading benchmark files in the formats they are published in: JSON Lines, JSON, CSV, TSV and Parquet.

Every task reads its rows through :func:`read_records`, so a dataset can be dropped in as it was released
(Belebele's JSON Lines, SIB-200's TSV, a Hugging Face Parquet export) without conversion.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

Record = dict[str, Any]


class DatasetError(ValueError):
    """A dataset file that is missing or does not have the layout its task expects."""


def read_records(path: Path) -> list[Record]:
    """The rows of ``path`` as dicts, read by its extension (``.jsonl``, ``.json``, ``.csv``, ``.tsv``, ``.parquet``)."""
    if not path.is_file():
        raise DatasetError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        with path.open(encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]
    if suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, list):
            raise DatasetError(f"{path}: expected a JSON list of records")
        return data
    if suffix in (".csv", ".tsv"):
        with path.open(encoding="utf-8", newline="") as handle:
            return list(csv.DictReader(handle, delimiter="\t" if suffix == ".tsv" else ","))
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        rows: list[Record] = pq.read_table(path).to_pylist()
        return rows
    raise DatasetError(f"{path}: unsupported file type {suffix!r} (use .jsonl, .json, .csv, .tsv or .parquet)")


def require_fields(record: Record, fields: tuple[str, ...], where: str) -> None:
    missing = [name for name in fields if name not in record]
    if missing:
        raise DatasetError(f"{where}: missing field(s) {', '.join(missing)}; it has {', '.join(sorted(record))}")
