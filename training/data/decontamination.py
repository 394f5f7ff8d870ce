"""Decontamination: documents that share a word n-gram with an evaluation set named in the config are dropped.

datatrove's ``NGramsDecontFilter`` does the filtering. Its index builder fetches tasks through lighteval at run
time; this one reads the evaluation sets from files (FLORES, Belebele, SIB-200, TajLiB … exported as JSONL,
Parquet or text) and writes the index in the same format.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
from datatrove.data import DocumentsPipeline
from datatrove.io import DataFolderLike, get_datafolder, open_file
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.decont.n_grams import NGramsDecontConfig
from datatrove.utils.hashing import create_hash_func
from datatrove.utils.text import ngrams, simplify_text
from datatrove.utils.word_tokenizers import WordTokenizer

from training.data.config import EvalSetConfig


def eval_items(eval_set: EvalSetConfig) -> Iterator[str]:
    """Every text field of every item: each field is indexed on its own, as n-grams never span two fields."""
    path = eval_set.path
    if path.endswith(".parquet"):
        import pyarrow.parquet as pq

        with open_file(path, "rb") as stream:
            table = pq.read_table(stream, columns=[f for f in eval_set.fields if f])
        for record in table.to_pylist():
            yield from (str(record[f]) for f in eval_set.fields if record.get(f))
        return
    with open_file(path, "rt", compression="infer", encoding="utf-8") as stream:
        if ".jsonl" in path or path.endswith(".json"):
            for line in stream:
                if line.strip():
                    record = json.loads(line)
                    yield from (str(record[f]) for f in eval_set.fields if record.get(f))
        else:
            yield from (line.strip() for line in stream if line.strip())


class EvalSetIndexer(PipelineStep):
    """Writes ``<name>.index.hashes`` (uint64 n-gram hashes) per evaluation set, for ``NGramsDecontFilter``."""

    type = "🦠 - DECONT"
    name = "📚 Eval-set n-gram index"

    def __init__(
        self,
        eval_sets: list[EvalSetConfig],
        output_folder: DataFolderLike,
        config: NGramsDecontConfig,
        words: WordTokenizer,
    ) -> None:
        super().__init__()
        self.eval_sets = eval_sets
        self.output_folder = get_datafolder(output_folder)
        self.config = config
        self.words = words

    def _hashes(self, text: str) -> set[int]:
        hash_func = create_hash_func(self.config.hash_config)
        tokens = self.words.word_tokenize(simplify_text(text, self.config.norm_config))
        return {hash_func(" ".join(gram)) for gram in ngrams(tokens, self.config.n_grams)}

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if world_size != 1:
            raise ValueError("the evaluation-set index is built by a single task")
        for eval_set in self.eval_sets:
            hashes: set[int] = set()
            with self.track_time():
                for item in eval_items(eval_set):
                    self.stat_update(f"items_{eval_set.name}")
                    item_hashes = self._hashes(item)
                    if not item_hashes:
                        self.stat_update(f"too_short_{eval_set.name}")
                    hashes |= item_hashes
            self.stat_update(f"ngrams_{eval_set.name}", value=len(hashes))
            array = np.array(sorted(hashes), dtype=self.config.hash_config.np_descr)
            with self.output_folder.open(f"{eval_set.name}.index.hashes", mode="wb") as stream:
                stream.write(array.tobytes())
        if data:
            yield from data
