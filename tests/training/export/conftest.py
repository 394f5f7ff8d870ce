"""Run outputs to export: a LoRA adapter on the tiny Gemma 3 and a tiny multimodal Gemma 3 checkpoint."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def lora_run(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What `soro train sft` with method: lora leaves in final/: adapter, tokenizer and run summary.

    The adapter's B matrices are random rather than zero (peft's init), so it changes the model's outputs
    as a trained adapter does.
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from training.common.run_summary import RunSummary

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    config = LoraConfig(
        r=4,
        lora_alpha=8,
        target_modules=["q_proj", "v_proj", "down_proj"],
        init_lora_weights=False,
        task_type="CAUSAL_LM",
    )
    adapted = get_peft_model(model, config)
    folder = tmp_path_factory.mktemp("sft") / "final"
    adapted.save_pretrained(str(folder))
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(folder)
    cpt = RunSummary(
        kind="cpt",
        base_model="google/gemma-3-1b-pt",
        data={"train_files": ["out/curated/tajik"], "train_tokens": 123456, "replay_share": 0.1},
        steps=40,
        metrics={"eval_loss": 2.5, "eval_bits_per_character": 1.1},
    )
    RunSummary(
        kind="sft",
        base_model=str(tiny_model_dir),
        data={"train_files": ["seed.jsonl"], "kept": 62, "method": "lora"},
        steps=16,
        metrics={"eval_loss": 1.9},
        parent=cpt,
    ).write(folder)
    return folder


@pytest.fixture(scope="session")
def eval_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from training.eval.results import EvalResults, Score

    folder = tmp_path_factory.mktemp("eval")
    return EvalResults(
        name="soro-1b",
        model="out/sft-1b/final",
        model_hash="ab" * 32,
        date="2026-03-21T10:00:00+00:00",
        backend="local",
        scores=[
            Score("belebele_tgk", "accuracy", 0.41, (0.36, 0.46), 300, True),
            Score("flores_tgk_eng", "chrf++", 38.2, (36.9, 39.4), 200, True),
            Score("bpc", "bits_per_char", 1.234, (1.2, 1.27), 50, False),
        ],
    ).write(folder)


@pytest.fixture(scope="session")
def multimodal_checkpoint(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Gemma 3 4B-style checkpoint in miniature: Gemma3ForConditionalGeneration with a small vision tower."""
    import torch
    from transformers import AutoTokenizer, Gemma3Config, Gemma3ForConditionalGeneration, SiglipVisionConfig

    from training.tiny import tiny_gemma3_config

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    text = tiny_gemma3_config(len(tokenizer))
    vision = SiglipVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, image_size=32, patch_size=8
    )
    config = Gemma3Config(
        text_config=text.to_dict(),
        vision_config=vision.to_dict(),
        mm_tokens_per_image=4,
        image_token_index=len(tokenizer) - 1,
        boi_token_index=len(tokenizer) - 2,
        eoi_token_index=len(tokenizer) - 3,
    )
    torch.manual_seed(1)
    folder = tmp_path_factory.mktemp("multimodal") / "gemma-3-tiny-mm"
    Gemma3ForConditionalGeneration(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    shutil.copy2(tiny_model_dir / "generation_config.json", folder / "generation_config.json")
    return folder
