"""Corpus shards for continual-pretraining tests, cut from the shared Tajik prose."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def prose_shards(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two JSONL shards, one paragraph of the President's addresses per record (as curation writes them)."""
    return write_prose_shards(shared_data, tmp_path_factory.mktemp("shards"))


def write_prose_shards(shared_data: Path, folder: Path) -> Path:
    for index, source in enumerate(sorted((shared_data / "prose").glob("Payom_MajlisiOli_*.txt"))[:2]):
        paragraphs = [p.strip() for p in source.read_text(encoding="utf-8").split("\n\n") if len(p.strip()) > 40][:150]
        with (folder / f"shard-{index:02d}.jsonl").open("w", encoding="utf-8") as handle:
            for paragraph in paragraphs:
                handle.write(json.dumps({"text": paragraph, "source": source.name}, ensure_ascii=False) + "\n")
    return folder


@pytest.fixture(scope="session")
def english_replay(shared_data: Path) -> Path:
    return shared_data / "langid" / "udhr_en.txt"
