"""Checkpoints between steps: documents and characters per source, read back by the report.

datatrove's steps count what they drop, but not per source and not always in characters; one tally after each
step gives the report every step's input and output per source, from the same stats files datatrove writes.
"""

from __future__ import annotations

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

TALLY_PREFIX = "📏 after "


class Tally(PipelineStep):
    type = "📏 - TALLY"

    def __init__(self, checkpoint: str) -> None:
        # Before PipelineStep.__init__, which names the step's stats after it.
        self.name = f"{TALLY_PREFIX}{checkpoint}"
        self.checkpoint = checkpoint
        super().__init__()

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for doc in data:
            source = doc.metadata.get("source", "")
            self.stat_update(f"docs/{source}")
            self.stat_update(f"chars/{source}", value=len(doc.text))
            yield doc
