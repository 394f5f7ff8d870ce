"""bench/train_gpu.py keeps working on a CPU with its tiny shape, so the GPU check is ready when a GPU is."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = [pytest.mark.train, pytest.mark.slow]

SCRIPT = Path(__file__).resolve().parents[3] / "bench" / "train_gpu.py"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("train_gpu", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_tiny_shape_trains_and_reports(capsys: pytest.CaptureFixture[str]) -> None:
    bench = _bench()
    result = bench.main(["--tiny", "--steps", "2"])
    assert result.tokens_per_second > 0 and math.isfinite(result.achieved_tflops)
    assert result.seq_len == 128 and result.steps == 2
    out = capsys.readouterr().out
    assert "| tokens/s" in out and "| MFU" in out


def test_flops_formula_matches_gemma3_1b_by_hand() -> None:
    from transformers import Gemma3TextConfig

    bench = _bench()
    config = Gemma3TextConfig(**bench.GEMMA3_1B)
    assert (
        config.layer_types is not None and config.layer_types.count("full_attention") == 4
    )  # 5 sliding : 1 global over 26 layers
    assert bench.mean_context(4096, None) == pytest.approx(2048.5)
    sliding = bench.mean_context(4096, 512)
    assert 512 * 0.9 < sliding < 512
    per_token = bench.flops_per_token(config, 1_000_000_000, 4096)
    attention = 12 * 4 * 256 * (4 * 2048.5 + 22 * sliding)
    assert per_token == pytest.approx(6e9 + attention)
