"""The training shards: one row per document with a fixed set of columns, whatever the sources carried.

Columns: text, id, source, kind, url, path, subject, grade, language, language_score, tajik_letter_share,
legacy_font_repaired, duplicate_count, minhash_cluster_size, token_count, and ``metadata``: every other field
the source had (FineWeb-2's dump and date, a PDF's title and page count, a curriculum's extra fields), as JSON.
A fixed schema keeps Parquet shards from different tasks and sources readable as one dataset.
"""

from __future__ import annotations

import json
from typing import Any

from datatrove.data import Document
from datatrove.pipeline.writers.disk_base import DiskWriter

from training.data.config import OutputOptions

_STRING_COLUMNS = ("source", "kind", "url", "path", "subject", "grade", "language")
_FLOAT_COLUMNS = ("language_score", "tajik_letter_share")
_INT_COLUMNS = ("duplicate_count", "minhash_cluster_size", "token_count")
# Reader bookkeeping that says nothing about the document.
_DROPPED_METADATA = frozenset({"file_path"})


def output_record(writer: DiskWriter, document: Document) -> dict[str, Any]:
    """datatrove writer adapter: a Document → one row of the shard schema."""
    metadata = dict(document.metadata)
    path = metadata.pop("file_path", None)
    row: dict[str, Any] = {"text": document.text, "id": str(document.id)}
    for column in _STRING_COLUMNS:
        value = metadata.pop(column, None)
        row[column] = None if value is None else str(value)
    row["path"] = row["path"] or (None if path is None else str(path))
    for column in _FLOAT_COLUMNS:
        value = metadata.pop(column, None)
        row[column] = None if value is None else float(value)
    row["legacy_font_repaired"] = bool(metadata.pop("legacy_font_repaired", False))
    for column in _INT_COLUMNS:
        value = metadata.pop(column, None)
        row[column] = None if value is None else int(value)
    rest = {key: value for key, value in metadata.items() if key not in _DROPPED_METADATA}
    row["metadata"] = json.dumps(rest, ensure_ascii=False, sort_keys=True, default=str)
    return row


def shard_schema() -> Any:
    import pyarrow as pa

    return pa.schema(
        [("text", pa.string()), ("id", pa.string())]
        + [(column, pa.string()) for column in _STRING_COLUMNS]
        + [(column, pa.float64()) for column in _FLOAT_COLUMNS]
        + [("legacy_font_repaired", pa.bool_())]
        + [(column, pa.int64()) for column in _INT_COLUMNS]
        + [("metadata", pa.string())]
    )


def shard_writer(options: OutputOptions, folder: str) -> DiskWriter:
    from datatrove.pipeline.writers import JsonlWriter, ParquetWriter

    if options.format == "parquet":
        return ParquetWriter(
            folder,
            output_filename="${rank}.parquet",
            compression="zstd",
            adapter=output_record,
            schema=shard_schema(),
            max_file_size=options.max_shard_mb * 2**20,
        )
    return JsonlWriter(folder, output_filename="${rank}.jsonl.gz", adapter=output_record)
