"""Reading text documents from shard files into a ``datasets.Dataset`` with one ``text`` column."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datasets import Dataset

# File suffix → the `datasets` builder that reads it.
_BUILDERS = {
    ".jsonl": "json",
    ".json": "json",
    ".jsonl.gz": "json",
    ".json.gz": "json",
    ".parquet": "parquet",
    ".txt": "text",
}


def _builder(path: Path) -> str | None:
    name = path.name.lower()
    for suffix, builder in _BUILDERS.items():
        if name.endswith(suffix):
            return builder
    return None


def shard_files(paths: Sequence[Path]) -> list[Path]:
    """The readable files among ``paths``, folders expanded recursively, in a stable (sorted) order."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file() and _builder(p)))
        elif path.is_file():
            if _builder(path) is None:
                raise ValueError(f"{path}: unsupported file type (use {', '.join(_BUILDERS)})")
            files.append(path)
        else:
            raise FileNotFoundError(f"{path}: no such file or folder")
    if not files:
        raise FileNotFoundError(f"no .jsonl, .parquet or .txt files in {', '.join(map(str, paths))}")
    return files


def read_documents(paths: Sequence[Path], *, text_field: str = "text") -> Dataset:
    """All documents of the shards under ``paths`` as a dataset with the single column ``text``.

    Records in JSON and Parquet shards carry their text in ``text_field``; a .txt file is one document.
    Empty documents are dropped.
    """
    from datasets import concatenate_datasets, load_dataset

    by_builder: dict[str, list[str]] = {}
    for file in shard_files(paths):
        builder = _builder(file)
        assert builder is not None
        by_builder.setdefault(builder, []).append(str(file))
    parts = []
    for builder, files in sorted(by_builder.items()):
        extra = {"sample_by": "document"} if builder == "text" else {}
        part = load_dataset(builder, data_files=files, split="train", **extra)
        field = "text" if builder == "text" else text_field
        if field not in part.column_names:
            raise ValueError(f"no field {field!r} in {files[0]} (fields: {', '.join(part.column_names)})")
        part = part.select_columns([field])
        if field != "text":
            part = part.rename_column(field, "text")
        parts.append(part)
    documents = concatenate_datasets(parts) if len(parts) > 1 else parts[0]
    return documents.filter(lambda row: bool(row["text"] and row["text"].strip()))
