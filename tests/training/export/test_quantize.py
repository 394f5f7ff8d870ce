"""Quantisation without llm-compressor's run: options, the missing-venv message, size reports.

The real runs (and vLLM serving their output) are in test_quantize_run.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from training.export.quantize import (
    QuantizeError,
    QuantizeOptions,
    SizeReport,
    quantize_model,
    size_report,
    write_report,
)

pytestmark = pytest.mark.train


def test_w4a16_needs_calibration_text_and_fp8_does_not() -> None:
    assert QuantizeOptions(scheme="fp8").calibration == []
    with pytest.raises(ValueError, match="GPTQ, which needs calibration text"):
        QuantizeOptions(scheme="w4a16")
    with pytest.raises(ValueError, match="scheme must be one of"):
        QuantizeOptions(scheme="int3")  # type: ignore[arg-type]


def test_without_its_venv_the_error_names_the_setup_script(tmp_path: Path) -> None:
    with pytest.raises(QuantizeError, match=r"not found at .*nowhere: run scripts/setup-quantize\.sh"):
        quantize_model(tmp_path, tmp_path / "out", QuantizeOptions(scheme="fp8"), venv=tmp_path / "nowhere")
    assert not (tmp_path / "out").exists()


def test_size_report_compares_weight_files(lora_run: Path, tmp_path: Path) -> None:
    from training.export.export import export_model

    full = export_model(lora_run, tmp_path / "fp32", dtype="float32").folder
    half = export_model(lora_run, tmp_path / "bf16", dtype="bfloat16").folder
    report = size_report(full, half, "bf16")
    assert report.ratio == pytest.approx(0.5, rel=0.02)

    write_report(report, full, half)
    card = (half / "README.md").read_text(encoding="utf-8")
    assert card.count("## Quantisation") == 1 and "| bf16 |" in card and "(50%)" in card
    assert (half / "size_report.json").is_file()


def test_size_report_markdown_in_mebibytes() -> None:
    text = SizeReport(scheme="w4a16", source_bytes=2 * 2**30, quantized_bytes=600 * 2**20).markdown()
    assert "| original | 2048.0 MiB |" in text and "| w4a16 | 600.0 MiB (29%) |" in text


def test_w4a16_of_a_model_whose_widths_128_does_not_divide_fails_clearly(tiny_model_dir: Path, tmp_path: Path) -> None:
    from soro.settings import Settings

    # The tiny model's hidden size is 64: W4A16's groups of 128 cannot tile its q/k/v/gate/up projections.
    options = QuantizeOptions(scheme="w4a16", calibration=[tiny_model_dir / "config.json"])
    with pytest.raises(QuantizeError, match=r"groups of 128 input features.*hidden_size\) = 64.*--scheme fp8"):
        quantize_model(tiny_model_dir, tmp_path / "out", options, venv=Settings().quantize_venv)
    assert not (tmp_path / "out").exists()
