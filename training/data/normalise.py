"""Normalisation with the service's own Tajik text module: NFC, whitespace, legacy-font repair per document."""

from __future__ import annotations

import re

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from tajik import normalize
from tajik.letters import LEGACY_LETTERS

_LEGACY_LETTER = re.compile(f"[{''.join(sorted(LEGACY_LETTERS))}]")


def _has_legacy_letters(text: str) -> bool:
    return _LEGACY_LETTER.search(text) is not None


class TajikNormalizer(PipelineStep):
    """``tajik.normalize`` on every document; notes which ones had a legacy font repaired.

    The repair decides per document (only Tajik text is repaired, never Serbian or Uzbek), which is why it runs
    on whole documents here rather than on lines or pages.
    """

    type = "✂️ - FORMAT"
    name = "🇹🇯 Tajik normalisation"

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for doc in data:
            self.stat_update("total")
            with self.track_time():
                had_legacy_letters = _has_legacy_letters(doc.text)
                doc.text = normalize(doc.text)
            if not doc.text:
                self.stat_update("dropped", "dropped_empty_after_normalisation")
                continue
            repaired = had_legacy_letters and not _has_legacy_letters(doc.text)
            doc.metadata["legacy_font_repaired"] = repaired
            if repaired:
                self.stat_update("legacy_font_repaired")
            self.stat_update("forwarded")
            yield doc
