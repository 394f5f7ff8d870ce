"""Translation between Tajik and English or Russian, scored with chrF++ (sacrebleu, corpus level).

Aligned segments come from a FLORES-200 folder (``{split}/{code}.{split}`` plain-text files, or the
FLORES+ Parquet files ``{split}/{code}.parquet`` with a ``text`` column) or from a multi-way JSON Lines file
such as the UDHR one, with a field per language.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from training.eval.backends.base import Backend
from training.eval.records import DatasetError, read_records
from training.eval.results import Metric, TaskResult
from training.eval.stats import chrf_segment_statistics

# Language names as the Tajik instruction says them.
LANGUAGE_NAMES = {"tgk_Cyrl": "тоҷикӣ", "eng_Latn": "англисӣ", "rus_Cyrl": "русӣ"}


@dataclass(frozen=True)
class Segment:
    id: str
    source: str
    reference: str


def _flores_lines(root: Path, split: str, code: str) -> list[str]:
    parquet = root / split / f"{code}.parquet"
    if parquet.is_file():
        return [str(record["text"]) for record in read_records(parquet)]
    text_file = root / split / f"{code}.{split}"
    if not text_file.is_file():
        raise DatasetError(f"{root}: neither {text_file.name} nor {parquet.name} in {root / split}")
    return text_file.read_text(encoding="utf-8").splitlines()


def load_segments(path: Path, source: str, target: str, *, split: str, fields: Mapping[str, str]) -> list[Segment]:
    """Aligned (source, reference) pairs from a FLORES-200 folder or a multi-way JSONL file."""
    if path.is_dir():
        sources = _flores_lines(path, split, source)
        targets = _flores_lines(path, split, target)
        if len(sources) != len(targets):
            raise DatasetError(f"{path}: {source} has {len(sources)} lines but {target} has {len(targets)}")
        return [Segment(f"{split}:{i}", s, t) for i, (s, t) in enumerate(zip(sources, targets, strict=True))]
    for code in (source, target):
        if code not in fields:
            raise DatasetError(f"{path}: no field is named for {code}; add it to the task's 'fields'")
    segments = []
    for i, record in enumerate(read_records(path)):
        src, ref = record.get(fields[source]), record.get(fields[target])
        if src and ref:
            segments.append(Segment(str(record.get("id", i)), str(src).strip(), str(ref).strip()))
    return segments


def translation_prompt(source_code: str, target_code: str, text: str) -> str:
    source = LANGUAGE_NAMES.get(source_code, source_code)
    target = LANGUAGE_NAMES.get(target_code, target_code)
    return f"Матни зеринро аз забони {source} ба забони {target} тарҷума кунед. Танҳо тарҷумаро нависед.\n\n{text}"


def first_line(reply: str) -> str:
    """The translation proper: models that add a note after it put the note on later lines."""
    for line in reply.strip().splitlines():
        if line.strip():
            return line.strip()
    return ""


async def score_translation(
    name: str,
    segments: Sequence[Segment],
    source_code: str,
    target_code: str,
    backend: Backend,
    *,
    max_tokens: int,
) -> TaskResult:
    conversations = [
        [{"role": "user", "content": translation_prompt(source_code, target_code, segment.source)}]
        for segment in segments
    ]
    generations = await backend.generate(conversations, max_tokens=max_tokens)
    hypotheses = [first_line(generation.text) for generation in generations]
    references = [segment.reference for segment in segments]
    return TaskResult(
        task=name,
        kind="translation",
        scoring="generation",
        item_ids=[segment.id for segment in segments],
        metrics=[Metric("chrf++", "chrf++", True, chrf_segment_statistics(hypotheses, references))],
        items=[
            {"id": segment.id, "source": segment.source, "reference": segment.reference, "hypothesis": hypothesis}
            for segment, hypothesis in zip(segments, hypotheses, strict=True)
        ],
    )
