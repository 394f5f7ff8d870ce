"""llm-compressor's one-shot run: an exported model folder in, its compressed-tensors variant out.

This file runs in llm-compressor's own venv (``SORO_QUANTIZE_VENV``, made by ``scripts/setup-quantize.sh``),
which pins an older transformers than the training stack and does not have the project installed. It therefore
imports only the standard library at module level (so ``training.export.quantize`` can read ``PRESET_SCHEMES``
from it without torch) and llm-compressor's stack inside functions, and has a plain ``argparse`` entry point::

    ~/.cache/soro/quantize-0.14.0.1/bin/python -P training/export/compress.py \
        --model out/soro-1b --out out/soro-1b-fp8 --scheme fp8

``soro train quantize`` (``training.export.quantize``) runs it that way and adds the size report.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# Our names → llm-compressor's preset schemes, both of which vLLM loads from the folder's config.json.
PRESET_SCHEMES: dict[str, str] = {"fp8": "FP8_DYNAMIC", "w4a16": "W4A16"}
# lm_head stays unquantised: it costs quality out of proportion to the bytes it saves.
DEFAULT_IGNORE: tuple[str, ...] = ("lm_head",)
# W4A16 stores one scale per this many input features of each linear layer.
W4A16_GROUP_SIZE = 128
# Lines the parent reads to show its progress bar: "soro-step N/TOTAL what".
STEP_PREFIX = "soro-step"
STEPS = ("load the model", "calibrate and quantise", "save compressed weights")


def _step(number: int) -> None:
    print(f"{STEP_PREFIX} {number}/{len(STEPS)} {STEPS[number - 1]}", flush=True)


def quantization_recipe(scheme: str, ignore: Sequence[str] = DEFAULT_IGNORE) -> list[Any]:
    """The llm-compressor modifiers for ``scheme``: round-to-nearest FP8, or GPTQ for INT4 weights."""
    from llmcompressor.modifiers.gptq import GPTQModifier
    from llmcompressor.modifiers.quantization import QuantizationModifier

    preset = PRESET_SCHEMES[scheme]
    if scheme == "fp8":
        return [QuantizationModifier(targets="Linear", scheme=preset, ignore=list(ignore))]
    return [GPTQModifier(targets="Linear", scheme=preset, ignore=list(ignore))]


def compress(
    model_dir: Path,
    out_dir: Path,
    scheme: str,
    *,
    calibration_texts: Sequence[str] = (),
    max_seq_len: int = 2048,
    ignore: Sequence[str] = DEFAULT_IGNORE,
) -> None:
    """Write the ``scheme`` variant of ``model_dir`` (weights, config, tokenizer) to ``out_dir``."""
    import torch
    from datasets import Dataset
    from llmcompressor import oneshot
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if scheme == "w4a16" and not calibration_texts:
        raise ValueError("w4a16 quantises with GPTQ, which needs calibration texts")
    _step(1)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    dataset = None
    if calibration_texts:
        # Already rendered (chat template applied) by the caller: the texts carry their own <bos>.
        encoded = tokenizer(list(calibration_texts), add_special_tokens=False, truncation=True, max_length=max_seq_len)
        dataset = Dataset.from_dict(dict(encoded))
    _step(2)
    oneshot(
        model=model,
        dataset=dataset,
        recipe=quantization_recipe(scheme, ignore),
        max_seq_length=max_seq_len,
        num_calibration_samples=max(len(calibration_texts), 1),
    )
    _step(3)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, save_compressed=True)
    tokenizer.save_pretrained(out_dir)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--model", type=Path, required=True, help="exported model folder")
    parser.add_argument("--out", type=Path, required=True, help="folder for the quantised variant")
    parser.add_argument("--scheme", choices=sorted(PRESET_SCHEMES), required=True)
    parser.add_argument("--calibration", type=Path, help="JSON list of calibration texts (needed for w4a16)")
    parser.add_argument("--max-seq-len", type=int, default=2048)
    parser.add_argument("--ignore", action="append", help="modules left unquantised (default: lm_head)")
    args = parser.parse_args(argv)
    texts: list[str] = json.loads(args.calibration.read_text(encoding="utf-8")) if args.calibration else []
    compress(
        args.model,
        args.out,
        args.scheme,
        calibration_texts=texts,
        max_seq_len=args.max_seq_len,
        ignore=tuple(args.ignore or DEFAULT_IGNORE),
    )


if __name__ == "__main__":
    main()
