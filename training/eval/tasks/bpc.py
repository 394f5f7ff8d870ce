"""Bits per character on held-out Tajik text: a perplexity that does not depend on the tokenizer.

Files are cut into passages of whole lines up to ``max_chars`` characters, so each passage fits a scoring
window and the bootstrap can resample passages.
"""

from __future__ import annotations

import glob
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from training.eval.backends.base import Backend
from training.eval.records import DatasetError
from training.eval.results import Metric, TaskResult


@dataclass(frozen=True)
class Passage:
    id: str
    text: str


def _pieces(line: str, max_chars: int) -> list[str]:
    """A line longer than ``max_chars`` split at spaces."""
    pieces: list[str] = []
    while len(line) > max_chars:
        cut = line.rfind(" ", 0, max_chars)
        cut = cut if cut > 0 else max_chars
        pieces.append(line[:cut].strip())
        line = line[cut:].strip()
    return [*pieces, line] if line else pieces


def passages_of(name: str, text: str, max_chars: int) -> list[Passage]:
    lines = [piece for line in text.splitlines() if line.strip() for piece in _pieces(line.strip(), max_chars)]
    passages: list[Passage] = []
    current: list[str] = []
    for line in lines:
        if current and len("\n".join([*current, line])) > max_chars:
            passages.append(Passage(f"{name}:{len(passages)}", "\n".join(current)))
            current = []
        current.append(line)
    if current:
        passages.append(Passage(f"{name}:{len(passages)}", "\n".join(current)))
    return passages


def load_passages(data_root: Path, patterns: Sequence[str], max_chars: int) -> list[Passage]:
    # glob.glob, unlike Path.glob, also takes absolute patterns (data_root / "/abs/*.txt" is "/abs/*.txt").
    matches = {Path(match) for pattern in patterns for match in glob.glob(str(data_root / pattern), recursive=True)}
    files = sorted(path for path in matches if path.is_file())
    if not files:
        raise DatasetError(f"{data_root}: no file matches {', '.join(patterns)}")
    return [
        passage
        for path in files
        for passage in passages_of(path.name, unicodedata.normalize("NFC", path.read_text(encoding="utf-8")), max_chars)
    ]


async def score_bits_per_character(name: str, passages: Sequence[Passage], backend: Backend) -> TaskResult:
    scores = await backend.text_bits([passage.text for passage in passages])
    return TaskResult(
        task=name,
        kind="bpc",
        scoring="loglikelihood",
        item_ids=[passage.id for passage in passages],
        metrics=[
            Metric("bits_per_char", "ratio", False, [[score.total_bits, float(score.characters)] for score in scores]),
            Metric(
                "tokens_per_char", "ratio", False, [[float(score.tokens), float(score.characters)] for score in scores]
            ),
        ],
        items=[
            {
                "id": passage.id,
                "characters": score.characters,
                "tokens": score.tokens,
                "bits": round(score.total_bits, 3),
            }
            for passage, score in zip(passages, scores, strict=True)
        ],
    )
