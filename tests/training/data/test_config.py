"""Curation configs: FineWeb-2's tgk_Cyrl thresholds by default, strict keys, and the shipped examples load."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from training.config import ConfigError, config_from_dict
from training.data.config import CurationConfig, load_curation_config, resume_fingerprint
from training.data.executors import make_executor
from training.data.stages import build_stages, layout_of

REPO_ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = sorted((REPO_ROOT / "configs" / "data").glob("*.yaml"))


def _minimal(**extra: object) -> CurationConfig:
    raw = {"output_dir": "out/x", "sources": [{"name": "web", "kind": "jsonl", "path": "raw"}], **extra}
    return config_from_dict(raw, CurationConfig)


def test_defaults_are_fineweb2_tgk_cyrl() -> None:
    config = _minimal()
    assert config.language.threshold == 0.766
    assert config.quality.gopher_repetition.dup_line_frac == 0.291
    assert config.quality.gopher_quality.stop_words == [
        "дар",
        "ва",
        "аз",
        "ба",
        "ки",
        "аст",
        "соли",
        "бо",
        "деҳа",
        "дорад",
    ]
    assert config.quality.fineweb_quality.line_punct_thr == 0.111
    assert (config.dedup.minhash.num_buckets, config.dedup.minhash.hashes_per_bucket) == (14, 8)
    # Work and report live beside the shards, never inside them.
    assert (config.work, config.report_folder) == (Path("out/x.work"), Path("out/x.report"))


def test_unknown_keys_and_bad_values_are_errors() -> None:
    with pytest.raises(ConfigError, match=r"language\.treshold"):
        _minimal(language={"treshold": 0.5})
    with pytest.raises(ConfigError, match="expected one of"):
        config_from_dict({"output_dir": "o", "sources": [{"name": "a", "kind": "html", "path": "p"}]}, CurationConfig)
    with pytest.raises(ConfigError, match="unique"):
        config_from_dict(
            {"output_dir": "o", "sources": [{"name": "a", "kind": "pdf", "path": "p"}] * 2}, CurationConfig
        )
    with pytest.raises(ConfigError, match="slurm"):
        _minimal(executor={"kind": "slurm"})


def test_workers_do_not_block_a_resume_but_thresholds_do() -> None:
    base = resume_fingerprint(_minimal())
    assert resume_fingerprint(_minimal(executor={"workers": 7})) == base
    assert resume_fingerprint(_minimal(language={"threshold": 0.9})) != base
    assert resume_fingerprint(_minimal(executor={"tasks": 8})) != base


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_example_configs_load_and_plan(path: Path) -> None:
    config = load_curation_config(path)
    # The example's tokenizer folder exists only where the model was downloaded; planning checks it is there.
    config = dataclasses.replace(config, report=dataclasses.replace(config.report, tokenizer=None))
    stages = build_stages(config)
    assert stages[-1].slug == "finalise"
    # Each stage gets its executor (Slurm and Ray ones only submit when run).
    for stage in stages:
        make_executor(stage, config.executor, layout_of(config))
