"""School material: a folder of books and lessons whose manifest gives each file its subject, grade and so on.

    curriculum/
      metadata.jsonl        {"file": "algebra/7/chapter1.pdf", "subject": "алгебра", "grade": 7, "title": "…"}
      algebra/7/chapter1.pdf
      literature/5/rudaki.txt

One document per file (.pdf, .txt, .md); every manifest field except "file" travels into the shards.
"""

from __future__ import annotations

import json
from typing import Any

from datatrove.data import DocumentsPipeline
from datatrove.io import DataFolderLike
from datatrove.pipeline.readers.base import BaseDiskReader
from datatrove.utils.logging import logger

from training.data.pdf import extract_pdf_text

TEXT_SUFFIXES = (".txt", ".md")


class CurriculumReader(BaseDiskReader):
    name = "🎒 Curriculum"

    def __init__(
        self,
        data_folder: DataFolderLike,
        manifest: str = "metadata.jsonl",
        min_chars_per_page: int = 20,
        limit: int = -1,
        default_metadata: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(data_folder, limit=limit, default_metadata=default_metadata)
        self.manifest = manifest
        self.min_chars_per_page = min_chars_per_page

    def _entries(self) -> list[dict[str, Any]]:
        with self.data_folder.open(self.manifest, "rt", encoding="utf-8") as stream:
            entries = [json.loads(line) for line in stream if line.strip()]
        missing = [i for i, entry in enumerate(entries, 1) if not isinstance(entry.get("file"), str)]
        if missing:
            raise ValueError(f'{self.manifest}: line(s) {missing} have no "file"')
        return sorted(entries, key=lambda entry: str(entry["file"]))

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if data:
            yield from data
        for count, entry in enumerate(self._entries()[rank::world_size]):
            if self.limit != -1 and count >= self.limit:
                break
            for document in self._read_entry(dict(entry)):
                self.update_doc_stats(document)
                yield document

    def read_file(self, filepath: str) -> DocumentsPipeline:
        yield from self._read_entry({"file": filepath})

    def _read_entry(self, entry: dict[str, Any]) -> DocumentsPipeline:
        path = str(entry.pop("file"))
        self.stat_update("input_files")
        if not self.data_folder.isfile(path):
            self.stat_update("dropped", "dropped_missing_file")
            logger.warning(f"{self.manifest} names {path}, which is not in {self.data_folder.path}")
            return
        with self.track_time():
            if path.lower().endswith(".pdf"):
                with self.data_folder.open(path, "rb") as stream:
                    pdf = extract_pdf_text(stream)
                if len(pdf.text) < self.min_chars_per_page * max(pdf.pages, 1):
                    self.stat_update("dropped", "dropped_no_text_layer")
                    return
                text = pdf.text
                entry.setdefault("pages", pdf.pages)
            elif path.lower().endswith(TEXT_SUFFIXES):
                with self.data_folder.open(path, "rt", encoding="utf-8") as stream:
                    text = stream.read()
            else:
                self.stat_update("dropped", "dropped_unsupported_file")
                return
        # Manifest values are scalars for the shards' columns; a grade of 7 and "7" mean the same.
        record = {key: value if isinstance(value, str) else json.dumps(value) for key, value in entry.items()}
        document = self.get_document_from_dict({**record, "text": text, "id": path}, path, 0)
        if document is not None:
            yield document
