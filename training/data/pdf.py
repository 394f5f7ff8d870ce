"""PDF text layers, page by page, with paragraphs rebuilt from the PDF's hard-wrapped lines.

A PDF line ends where the page ended, not where the sentence did. Lines that continue a sentence (the line
does not end a sentence and the next one starts in lower case) are joined, so the quality filters see
paragraphs, as on the web; headings, list items and verse keep their own lines. Bare page numbers at the top or
bottom of a page are dropped. Legacy-font repair happens later, on the whole document (see normalise.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import IO, Any

from datatrove.data import DocumentsPipeline
from datatrove.io import DataFolderLike
from datatrove.pipeline.readers.base import BaseDiskReader
from datatrove.utils.logging import logger

_PAGE_NUMBER = re.compile(r"^\s*[-–—]?\s*\d{1,4}\s*[-–—]?\s*$")
_ENDS_UNIT = re.compile(r"[.!?…:;»\"”)]$")
# The joined line must start with a lower-case letter: a new sentence, heading or list item starts otherwise.
_STARTS_LOWER = re.compile(r"^[a-zа-яёӣқғӯҳҷ]")


@dataclass(frozen=True)
class PdfText:
    text: str
    pages: int
    pages_with_text: int
    title: str | None


def reflow(lines: list[str]) -> list[str]:
    """Join hard-wrapped lines into paragraphs; keep every other line break."""
    paragraphs: list[str] = []
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        if paragraphs and not _ENDS_UNIT.search(paragraphs[-1]) and _STARTS_LOWER.match(line):
            # A word broken at a hyphen keeps it: Tajik compounds (ӯ-бар) must not be glued or split.
            glue = "" if paragraphs[-1].endswith("-") and paragraphs[-1][-2:-1].isalpha() else " "
            paragraphs[-1] = paragraphs[-1] + glue + line
        else:
            paragraphs.append(line)
    return paragraphs


def _page_lines(page_text: str) -> list[str]:
    lines = [line for line in page_text.splitlines() if line.strip()]
    while lines and _PAGE_NUMBER.match(lines[0]):
        lines.pop(0)
    while lines and _PAGE_NUMBER.match(lines[-1]):
        lines.pop()
    return lines


def extract_pdf_text(stream: IO[bytes]) -> PdfText:
    """The text layer of a PDF, pages in order, paragraphs rebuilt across line and page breaks."""
    from pypdf import PdfReader

    reader = PdfReader(stream)
    if reader.is_encrypted:
        # Many official PDFs are "encrypted" with an empty password only to forbid editing.
        reader.decrypt("")
    lines: list[str] = []
    pages_with_text = 0
    for page in reader.pages:
        page_lines = _page_lines(page.extract_text() or "")
        pages_with_text += bool(page_lines)
        lines.extend(page_lines)
    metadata = reader.metadata
    title = str(metadata.title) if metadata is not None and metadata.title else None
    return PdfText("\n".join(reflow(lines)), len(reader.pages), pages_with_text, title)


class PdfReader(BaseDiskReader):
    """One document per PDF file; PDFs without a usable text layer (scans) are counted and skipped."""

    name = "📄 PDF"

    def __init__(
        self,
        data_folder: DataFolderLike,
        glob_pattern: str | None = "**/*.pdf",
        min_chars_per_page: int = 20,
        limit: int = -1,
        default_metadata: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(data_folder, limit=limit, default_metadata=default_metadata, glob_pattern=glob_pattern)
        self.min_chars_per_page = min_chars_per_page

    def read_file(self, filepath: str) -> DocumentsPipeline:
        with self.track_time():
            try:
                with self.data_folder.open(filepath, "rb") as stream:
                    pdf = extract_pdf_text(stream)
            except Exception as exc:  # pypdf raises many types on damaged files; one bad file must not stop a task
                self.stat_update("dropped", "dropped_unreadable_pdf")
                logger.warning(f"Skipping unreadable PDF {filepath}: {exc}")
                return
        self.stat_update("pages", value=pdf.pages)
        if len(pdf.text) < self.min_chars_per_page * max(pdf.pages, 1):
            self.stat_update("dropped", "dropped_no_text_layer")
            return
        record: dict[str, Any] = {
            "text": pdf.text,
            "id": filepath,
            "pages": pdf.pages,
            "pages_with_text": pdf.pages_with_text,
        }
        if pdf.title:
            record["title"] = pdf.title
        document = self.get_document_from_dict(record, filepath, 0)
        if document is not None:
            yield document
