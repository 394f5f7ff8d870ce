"""Folders of plain-text files (books and articles saved as .txt): one document per file."""

from __future__ import annotations

from typing import Any

from datatrove.data import DocumentsPipeline
from datatrove.io import DataFolderLike
from datatrove.pipeline.readers.base import BaseDiskReader


class TextFileReader(BaseDiskReader):
    name = "📝 Text files"

    def __init__(
        self,
        data_folder: DataFolderLike,
        glob_pattern: str | None = "**/*.txt",
        limit: int = -1,
        default_metadata: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(data_folder, limit=limit, default_metadata=default_metadata, glob_pattern=glob_pattern)

    def read_file(self, filepath: str) -> DocumentsPipeline:
        with self.track_time(), self.data_folder.open(filepath, "rt", encoding="utf-8") as stream:
            text = stream.read()
        document = self.get_document_from_dict({"text": text, "id": filepath}, filepath, 0)
        if document is not None:
            yield document
