"""Quantisation: what can be checked without llm-compressor's run (options, the missing-tool message, reports)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from training.export.quantize import (
    QuantizeError,
    QuantizeOptions,
    SizeReport,
    quantization_recipe,
    size_report,
    write_report,
)

pytestmark = pytest.mark.train

HAS_LLMCOMPRESSOR = importlib.util.find_spec("llmcompressor") is not None


def test_w4a16_needs_calibration_text_and_fp8_does_not() -> None:
    assert QuantizeOptions(scheme="fp8").calibration == []
    with pytest.raises(ValueError, match="GPTQ, which needs calibration text"):
        QuantizeOptions(scheme="w4a16")
    with pytest.raises(ValueError, match="scheme must be one of"):
        QuantizeOptions(scheme="int3")  # type: ignore[arg-type]


@pytest.mark.skipif(HAS_LLMCOMPRESSOR, reason="llm-compressor is installed here")
def test_without_llmcompressor_the_error_says_how_to_install_it() -> None:
    with pytest.raises(QuantizeError, match=r"\.venv-quantize/bin/pip install -e '\.\[quantize\]'"):
        quantization_recipe(QuantizeOptions(scheme="fp8"))


@pytest.mark.skipif(not HAS_LLMCOMPRESSOR, reason="llm-compressor lives in its own venv ('.[quantize]')")
def test_recipes_use_vllm_loadable_presets() -> None:
    fp8 = quantization_recipe(QuantizeOptions(scheme="fp8"))
    w4a16 = quantization_recipe(QuantizeOptions(scheme="w4a16", calibration=[Path("calibration.jsonl")]))
    assert [type(m).__name__ for m in fp8] == ["QuantizationModifier"] and fp8[0].scheme == "FP8_DYNAMIC"
    assert [type(m).__name__ for m in w4a16] == ["GPTQModifier"] and w4a16[0].scheme == "W4A16"
    assert fp8[0].ignore == ["lm_head"]


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
