"""The optional curation step that restores Tajik letters, and `soro data lexicon` over build shards."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from datatrove.data import Document
from typer.testing import CliRunner

from soro.cli import app
from tajik.lexicon import Lexicon
from tajik.restore import restore
from training.data.config import NormaliseOptions
from training.data.restoration import TajikLetterRestorer

from .conftest import RawCorpus

TYPED = "Имруз дар Точикистон хаво хуб аст ва мо ба мактаб меравем. Хукумати чумхури барои мактабхо кор мекунад."
RUSSIAN = "Сегодня у нас хорошая погода, и мы идём в школу."
PROPER = "Имрӯз дар Тоҷикистон ҳаво хуб аст."


def test_the_step_is_off_unless_asked_for() -> None:
    assert NormaliseOptions().restore_tajik_letters is False


def test_the_step_restores_tajik_typed_without_its_letters_and_nothing_else() -> None:
    step = TajikLetterRestorer()
    docs = [Document(text=t, id=str(i)) for i, t in enumerate([TYPED, RUSSIAN, PROPER])]
    out = {doc.id: doc for doc in step.run(iter(docs))}
    assert out["0"].text == restore(TYPED) and "Тоҷикистон" in out["0"].text and "ҳаво" in out["0"].text
    assert out["0"].metadata["tajik_letters_restored"] is True
    assert out["1"].text == RUSSIAN and "tajik_letters_restored" not in out["1"].metadata
    assert out["2"].text == PROPER
    assert step.stats["restored"].total == 1
    assert step.stats["forwarded"].total == 3


def test_lexicon_command_counts_the_tajik_documents_of_build_shards(tmp_path: Path) -> None:
    shards = tmp_path / "shards"
    shards.mkdir()
    rows = [{"text": "Ҳаво хуб аст. Ҳаво гарм аст.", "id": "a"}, {"text": "Хаво хуб", "id": "b"}]
    with gzip.open(shards / "00000.jsonl.gz", "wt", encoding="utf-8") as out:
        out.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    lexicon_path = tmp_path / "lexicon.txt"

    result = CliRunner().invoke(app, ["data", "lexicon", str(shards), str(lexicon_path)])

    assert result.exit_code == 0, result.output
    lexicon = Lexicon.load(lexicon_path)
    assert lexicon.count("ҳаво") == 2  # the document typed without Tajik letters taught it nothing
    assert lexicon.count("хаво") == 0
    assert restore("Хаво гарм", lexicon) == "Ҳаво гарм"


def test_lexicon_command_refuses_a_missing_corpus(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["data", "lexicon", str(tmp_path / "nowhere"), str(tmp_path / "x")])
    assert result.exit_code == 2


@pytest.mark.shared_data
def test_the_prepare_stages_restore_only_when_the_config_says_so(raw_corpus: RawCorpus, tmp_path: Path) -> None:
    from training.data.config import load_curation_config
    from training.data.stages import build_stages

    def prepare_steps(extra: str) -> str:
        path = raw_corpus.config(tmp_path / "plan")
        path.write_text(path.read_text(encoding="utf-8") + extra, encoding="utf-8")
        stages = build_stages(load_curation_config(path))
        return " ".join(str(step) for stage in stages if stage.slug.startswith("prepare-") for step in stage.pipeline)

    assert "letter restoration" not in prepare_steps("")
    assert "letter restoration" in prepare_steps("\nnormalise:\n  restore_tajik_letters: true\n")


@pytest.mark.shared_data
def test_the_shipped_lexicon_is_what_its_readme_says_it_was_counted_from(shared_data: Path, tmp_path: Path) -> None:
    from tajik.lexicon import DEFAULT_PATH

    out = tmp_path / "lexicon.txt"
    everyday = DEFAULT_PATH.with_name("everyday.txt")
    args = ["data", "lexicon", str(shared_data / "prose"), str(out), "--also", str(everyday)]
    assert CliRunner().invoke(app, args).exit_code == 0
    assert Lexicon.load(out).by_key == Lexicon.load(DEFAULT_PATH).by_key
    assert Lexicon.load(out).following == Lexicon.load(DEFAULT_PATH).following
