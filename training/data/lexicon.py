"""`soro data lexicon`: count the Tajik word forms of curated text into the lexicon that restores Tajik letters.

The corpus is what ``soro data build`` wrote (its shards: ``*.jsonl.gz``/``*.jsonl`` or ``*.parquet`` rows with a
``text`` column) or plain UTF-8 ``*.txt`` files. Only documents that already carry Tajik letters are counted:
a text typed without them would teach the lexicon the very spellings it is meant to repair.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from tajik.lexicon import Lexicon, LexiconCounter
from tajik.restore import has_tajik_letters


def corpus_texts(paths: Iterable[Path]) -> Iterator[str]:
    """Every document's text under ``paths`` (files or folders), in a stable order."""
    for path in paths:
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            yield from _file_texts(file)


def _file_texts(file: Path) -> Iterator[str]:
    name = file.name
    if name.endswith((".jsonl.gz", ".jsonl")):
        opener = gzip.open if name.endswith(".gz") else open
        with opener(file, "rt", encoding="utf-8") as lines:
            for line in lines:
                if line.strip():
                    yield str(json.loads(line)["text"])
    elif name.endswith(".parquet"):
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(file).iter_batches(columns=["text"]):
            yield from (str(text) for text in batch.column(0).to_pylist() if text)
    elif name.endswith(".txt"):
        yield file.read_text(encoding="utf-8")


def build_lexicon(paths: Iterable[Path], min_count: int = 1) -> tuple[Lexicon, int]:
    """The lexicon of the documents under ``paths`` and how many documents were counted."""
    counter = LexiconCounter()
    documents = 0
    for text in corpus_texts(paths):
        if has_tajik_letters(text):
            counter.add(text)
            documents += 1
    return counter.lexicon(min_count), documents
