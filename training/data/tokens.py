"""Token counts for the report and the shards: a local tokenizer, or whitespace-separated words by default."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.utils.batching import batched


def tokenizer_file(tokenizer: str) -> Path:
    """``tokenizer.json`` of a saved tokenizer folder, or the file itself; never a hub name (no downloads)."""
    path = Path(tokenizer).expanduser()
    file = path / "tokenizer.json" if path.is_dir() else path
    if not file.is_file():
        raise FileNotFoundError(
            f"report.tokenizer: {tokenizer} is neither a tokenizer.json file nor a folder holding one"
        )
    return file


@functools.cache
def _load(file: str) -> Any:
    from tokenizers import Tokenizer

    return Tokenizer.from_file(file)


class TokenCounter(PipelineStep):
    """Sets ``token_count`` on every document and adds it up per source."""

    type = "🔢 - TOKENIZER"

    name = "🔢 Tokens"

    def __init__(self, tokenizer: str | None = None, batch_size: int = 256) -> None:
        super().__init__()
        self.tokenizer_file = str(tokenizer_file(tokenizer)) if tokenizer else None
        self.batch_size = batch_size

    def _count(self, texts: list[str]) -> list[int]:
        if self.tokenizer_file is None:
            return [len(text.split()) for text in texts]
        encodings = _load(self.tokenizer_file).encode_batch(texts, add_special_tokens=False)
        return [len(encoding.ids) for encoding in encodings]

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for batch in batched(data, self.batch_size):
            with self.track_time(unit="batch"):
                counts = self._count([doc.text for doc in batch])
            for doc, count in zip(batch, counts, strict=True):
                doc.metadata["token_count"] = count
                self.stat_update(f"tokens/{doc.metadata.get('source', '')}", value=count)
                yield doc
