"""Readers (and, for HTML, the extractor) for each kind of raw source: datatrove's own wherever one exists."""

from __future__ import annotations

import functools
from typing import Any

from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.readers.base import BaseReader

from training.data.config import ExtractOptions, SourceConfig

DEFAULT_GLOBS = {
    "jsonl": "**/*.jsonl*",
    "parquet": "**/*.parquet",
    "fineweb2": "**/*.parquet",
    "warc": "**/*.warc*",
    "pdf": "**/*.pdf",
    "text": "**/*.txt",
}


def _tag(
    tags: dict[str, str], reader: BaseReader, data: dict[str, Any], path: str, id_in_file: int | str
) -> dict[str, Any]:
    """datatrove's default record → document mapping, then the source's name and kind on top.

    Tags win over the record's own fields: a web dump with a "source" column must not rename our source.
    """
    document: dict[str, Any] = reader._default_adapter(data, path, id_in_file)
    clashes = {key: document["metadata"].pop(key) for key in tags if key in document["metadata"]}
    document["metadata"].update({f"original_{key}": value for key, value in clashes.items()})
    document["metadata"].update(tags)
    return document


def _tag_fineweb2(
    tags: dict[str, str], reader: BaseReader, data: dict[str, Any], path: str, id_in_file: int | str
) -> dict[str, Any]:
    """FineWeb-2's columns: its GlotLID label and score become ``source_*`` (ours replace them); its
    ``file_path`` names the Common Crawl WARC, so it becomes ``warc_path`` and ``file_path`` is our shard."""
    renamed = {
        "language": "source_language",
        "language_score": "source_language_score",
        "language_script": "source_language_script",
        "file_path": "warc_path",
    }
    data = {renamed.get(key, key): value for key, value in data.items()}
    return _tag(tags, reader, data, path, id_in_file)


def source_steps(source: SourceConfig, extract: ExtractOptions) -> list[PipelineStep]:
    """The steps that turn one source's files into plain-text documents tagged with the source's name."""
    from datatrove.pipeline.extractors import Trafilatura
    from datatrove.pipeline.readers import JsonlReader, ParquetReader, WarcReader

    from training.data.curriculum import CurriculumReader
    from training.data.pdf import PdfReader
    from training.data.plaintext import TextFileReader

    tags = {"source": source.name, "kind": source.kind, **source.metadata}
    glob = source.glob or DEFAULT_GLOBS.get(source.kind)
    common: dict[str, Any] = {
        "glob_pattern": glob,
        "text_key": source.text_key,
        "id_key": source.id_key,
        "limit": source.limit,
        "adapter": functools.partial(_tag, tags),
    }
    if source.kind == "jsonl":
        return [JsonlReader(source.path, **common)]
    if source.kind == "parquet":
        return [ParquetReader(source.path, **common)]
    if source.kind == "fineweb2":
        return [ParquetReader(source.path, **common | {"adapter": functools.partial(_tag_fineweb2, tags)})]
    if source.kind == "warc":
        return [
            WarcReader(source.path, **common),
            Trafilatura(favour_precision=extract.favour_precision, timeout=extract.html_timeout_s),
        ]
    if source.kind == "pdf":
        return [
            PdfReader(
                source.path,
                glob_pattern=glob,
                min_chars_per_page=extract.pdf_min_chars_per_page,
                limit=source.limit,
                default_metadata=tags,
            )
        ]
    if source.kind == "text":
        return [TextFileReader(source.path, glob_pattern=glob, limit=source.limit, default_metadata=tags)]
    return [
        CurriculumReader(
            source.path,
            manifest=source.manifest,
            min_chars_per_page=extract.pdf_min_chars_per_page,
            limit=source.limit,
            default_metadata=tags,
        )
    ]
