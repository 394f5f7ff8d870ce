"""Optional curation step: restore ғ ӣ қ ӯ ҳ ҷ in Tajik documents typed on a Russian keyboard.

Uses the same lexicon and rules as the bot (``tajik.restore``), so the model trains on the spelling the service
shows it. A document that has any Tajik letter already passes unchanged, and so does text that is not Tajik:
restoring Russian would turn its "у" into "ӯ".
"""

from __future__ import annotations

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from tajik import looks_tajik
from tajik.restore import has_tajik_letters, restore


class TajikLetterRestorer(PipelineStep):
    type = "✂️ - FORMAT"
    name = "🇹🇯 Tajik letter restoration"

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for doc in data:
            self.stat_update("total")
            if not has_tajik_letters(doc.text) and looks_tajik(doc.text):
                with self.track_time():
                    restored = restore(doc.text)
                if restored != doc.text:
                    doc.text = restored
                    doc.metadata["tajik_letters_restored"] = True
                    self.stat_update("restored")
            self.stat_update("forwarded")
            yield doc
