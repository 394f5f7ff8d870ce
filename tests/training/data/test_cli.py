"""`soro data build` from the command line: errors a user can act on, and the verb's help."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from soro.cli import app


def test_a_bad_config_is_reported_with_its_key(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("output_dir: out\nsources: []\nlanguage: {treshold: 0.5}\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["data", "build", str(config)])
    assert result.exit_code == 2
    assert "language.treshold" in result.output


def test_help_names_resume_and_restart() -> None:
    result = CliRunner().invoke(app, ["data", "build", "--help"])
    assert result.exit_code == 0
    assert "--restart" in result.output and "resume" in result.output


def test_a_missing_source_folder_is_named_before_anything_runs(tmp_path: Path) -> None:
    config = tmp_path / "missing.yaml"
    config.write_text(
        f"output_dir: {tmp_path / 'out'}\nsources: [{{name: web, kind: jsonl, path: {tmp_path / 'nowhere'}}}]\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["data", "build", str(config)])
    assert result.exit_code == 2
    said = " ".join(result.output.split())  # the console wraps long lines
    assert "source web:" in said and "does not exist" in said
    assert not (tmp_path / "out.work").exists()
