"""Instruction examples for SFT tests: the real seed file and hand-made records with known faults."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def seed_instructions(shared_data: Path) -> Path:
    return shared_data / "instructions" / "instruction_seed.jsonl"


def write_jsonl(path: Path, records: list[object]) -> Path:
    lines = [record if isinstance(record, str) else json.dumps(record, ensure_ascii=False) for record in records]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
