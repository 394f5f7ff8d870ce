"""Typed YAML configs: what a user who mistypes a key or a value sees."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from training.config import ConfigError, config_from_dict, config_to_dict, load_config

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Inner:
    rate: float
    mode: Literal["a", "b"] = "a"

    def __post_init__(self) -> None:
        if self.rate < 0:
            raise ValueError("rate must not be negative")


@dataclass(frozen=True)
class Outer:
    name: str
    inner: Inner
    paths: list[Path] = field(default_factory=list)
    limit: int | None = None
    extra: Inner | None = None


def test_loads_nested_dataclasses_with_types(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    # 5e-5 without a dot is a string to YAML 1.1, but clearly meant as a number.
    path.write_text("name: x\ninner: {rate: 5e-5, mode: b}\npaths: [a/b.jsonl]\nextra: null\n", encoding="utf-8")
    config = load_config(path, Outer)
    assert config == Outer(name="x", inner=Inner(rate=5e-5, mode="b"), paths=[Path("a/b.jsonl")])
    assert isinstance(config.inner.rate, float)
    assert config_to_dict(config)["paths"] == ["a/b.jsonl"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"name": "x", "inner": {"rate": 1}, "lr": 3}, "unknown key(s) lr"),
        ({"name": "x", "inner": {"rate": 1, "mdoe": "a"}}, "unknown key(s) inner.mdoe"),
        ({"name": "x"}, "inner: required key is missing"),
        ({"name": "x", "inner": {"rate": "fast"}}, "inner.rate: expected float, got 'fast'"),
        ({"name": "x", "inner": {"rate": 1, "mode": "c"}}, "inner.mode: expected one of ['a', 'b']"),
        ({"name": "x", "inner": {"rate": True}}, "inner.rate: expected float"),
        ({"name": "x", "inner": {"rate": "1e-x"}}, "inner.rate: expected float"),
        ({"name": "x", "inner": {"rate": 1}, "limit": 1.5}, "limit: expected int"),
        ({"name": "x", "inner": {"rate": -1}}, "inner: rate must not be negative"),
        ({"name": "x", "inner": {"rate": 1}, "paths": "a.jsonl"}, "paths: expected a list"),
    ],
)
def test_mistakes_are_errors_that_name_the_key(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config_from_dict(raw, Outer)
    assert message in str(caught.value)


def test_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\ninner: {rate: 1}\nunknown: 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad\.yaml: unknown key\(s\) unknown"):
        load_config(path, Outer)


def test_shipped_training_configs_load() -> None:
    from training.cpt.config import CptConfig
    from training.sft.config import SftConfig

    configs = sorted((REPO_ROOT / "configs" / "train").glob("*.yaml"))
    kinds: dict[str, type[CptConfig] | type[SftConfig]] = {"cpt": CptConfig, "sft": SftConfig}
    assert {path.name.split("-")[0] for path in configs} == set(kinds)
    for path in configs:
        config: CptConfig | SftConfig = load_config(path, kinds[path.name.split("-")[0]])
        # CPT starts from a published checkpoint, SFT from the CPT run of the same size.
        size = path.stem.split("-")[1]
        expected = "google/gemma-3-" if path.name.startswith("cpt") else f"out/cpt-{size}/final"
        assert config.model.name_or_path.startswith(expected), path


def test_set_overrides_dotted_keys_with_yaml_values(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("name: x\ninner: {rate: 0.5}\n", encoding="utf-8")
    config = load_config(
        path,
        Outer,
        overrides=["inner.rate=2e-5", "inner.mode=b", "paths=[a.jsonl, b.jsonl]", "extra.rate=1", "limit=7"],
    )
    assert config == Outer(
        name="x", inner=Inner(rate=2e-5, mode="b"), paths=[Path("a.jsonl"), Path("b.jsonl")], limit=7, extra=Inner(1.0)
    )
    assert load_config(path, Outer).inner.rate == 0.5  # the file itself is untouched


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("inner.rat=1", "unknown key(s) inner.rat"),
        ("inner.rate=fast", "inner.rate: expected float, got 'fast'"),
        ("inner.mode=c", "inner.mode: expected one of ['a', 'b']"),
        ("name.first=1", "cannot set 'first' inside a value"),
        ("limit", "expected dotted.key=value"),
        ("paths.3=a", "expected a list index below 0"),
    ],
)
def test_a_wrong_override_is_an_error_that_names_it(tmp_path: Path, override: str, message: str) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("name: x\ninner: {rate: 0.5}\npaths: []\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(path, Outer, overrides=[override])


@pytest.mark.parametrize(
    ("command", "config"),
    [
        (["train", "cpt"], "configs/train/cpt-270m.yaml"),
        (["train", "sft"], "configs/train/sft-270m.yaml"),
        (["data", "build"], "configs/data/tajik-corpus.yaml"),
        (["eval", "run"], "configs/eval/tajik.yaml"),
    ],
)
def test_every_config_command_takes_set_overrides(command: list[str], config: str) -> None:
    from typer.testing import CliRunner

    from soro.cli import app

    # A misspelt override is refused before anything runs, naming the key: proof that --set reaches the schema.
    result = CliRunner().invoke(app, [*command, str(REPO_ROOT / config), "--set", "no_such_key=1"])
    assert result.exit_code == 2, result.output
    assert "no_such_key" in " ".join(result.output.replace("│", " ").split())
