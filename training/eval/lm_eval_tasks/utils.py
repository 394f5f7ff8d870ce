"""Document builders for the Soro task files: the same items and prompts as ``soro eval run``.

lm-evaluation-harness loads this file by path (``!function utils.…``); it needs the ``soro`` package
installed in the same environment (``pip install -e .[train]``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import datasets

from training.eval.tasks import mcq
from training.eval.tasks.translation import load_segments, translation_prompt


def _choice_docs(dataset: datasets.Dataset, build: mcq.ItemBuilder) -> datasets.Dataset:
    items = [build(dict(row), index) for index, row in enumerate(dataset)]
    return datasets.Dataset.from_list(
        [{"id": item.id, "query": item.prompt, "choices": list(item.letters), "gold": item.answer} for item in items]
    )


def belebele_docs(dataset: datasets.Dataset) -> datasets.Dataset:
    return _choice_docs(dataset, mcq.belebele_item)


def sib200_docs(dataset: datasets.Dataset) -> datasets.Dataset:
    return _choice_docs(dataset, mcq.sib200_item)


def tajlib_docs(dataset: datasets.Dataset) -> datasets.Dataset:
    return _choice_docs(dataset, mcq.tajlib_item)


def talim_docs(dataset: datasets.Dataset) -> datasets.Dataset:
    return _choice_docs(dataset, mcq.talim_item)


def flores(path: str, source: str, target: str, split: str = "devtest", **_: Any) -> datasets.DatasetDict:
    """FLORES-200 pairs read from a local folder (two aligned files cannot be one ``data_files`` entry)."""
    segments = load_segments(Path(path), source, target, split=split, fields={})
    docs = [
        {"id": s.id, "prompt": translation_prompt(source, target, s.source), "reference": s.reference} for s in segments
    ]
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(docs)})
