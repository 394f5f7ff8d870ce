"""Export: the merged model computes what the adapted one did, and the folder has all vLLM and users need."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from training.export.export import export_model

if TYPE_CHECKING:
    import torch

pytestmark = pytest.mark.train

PROMPT = [[2, 40, 41, 42, 43, 44, 45, 46]]


def _logits(model: Any) -> torch.Tensor:
    import torch

    with torch.no_grad():
        logits: torch.Tensor = model(input_ids=torch.tensor(PROMPT)).logits
    return logits


def test_lora_merge_equals_the_adapted_model(lora_run: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = _logits(AutoModelForCausalLM.from_pretrained(tiny_model_dir))
    adapted = _logits(PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), lora_run))
    result = export_model(lora_run, tmp_path / "soro", dtype="float32")
    merged = _logits(AutoModelForCausalLM.from_pretrained(result.folder))

    assert result.merged_adapter and result.base_model == str(tiny_model_dir)
    assert not torch.allclose(adapted, base, atol=1e-3), "the adapter should change the outputs"
    torch.testing.assert_close(merged, adapted, atol=1e-4, rtol=1e-4)


def test_export_writes_a_servable_folder_with_a_card(
    lora_run: Path, eval_results: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    from transformers import AutoConfig, AutoTokenizer, GenerationConfig

    folder = export_model(lora_run, tmp_path / "soro-1b", eval_results=eval_results).folder
    assert not (folder / "adapter_config.json").exists()
    config = AutoConfig.from_pretrained(folder)
    assert config.architectures == ["Gemma3ForCausalLM"] and config.model_type == "gemma3_text"
    weights = json.loads((folder / "config.json").read_text())
    assert weights["dtype"] == "bfloat16"

    tokenizer = AutoTokenizer.from_pretrained(folder)
    source = AutoTokenizer.from_pretrained(tiny_model_dir)
    chat = [{"role": "system", "content": "Ту Соро ҳастӣ."}, {"role": "user", "content": "Салом!"}]
    assert tokenizer.apply_chat_template(
        chat, tokenize=False, add_generation_prompt=True
    ) == source.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    generation = GenerationConfig.from_pretrained(folder)
    assert generation.eos_token_id == [
        tokenizer.convert_tokens_to_ids("<eos>"),
        tokenizer.convert_tokens_to_ids("<end_of_turn>"),
    ]
    assert generation.bos_token_id == tokenizer.bos_token_id

    card = (folder / "README.md").read_text(encoding="utf-8")
    assert card.startswith('---\nbase_model: "google/gemma-3-1b-pt"\n')
    assert "### 1. continual pretraining from `google/gemma-3-1b-pt`" in card
    assert "- steps: 40" in card and "- training tokens: 123456" in card
    assert "### 2. instruction tuning" in card and "- steps: 16" in card and "- method: lora" in card
    assert "| belebele_tgk | accuracy ↑ | 0.410 | 0.360 – 0.460 | 300 |" in card
    assert "| flores_tgk_eng | chrf++ ↑ | 38.2 | 36.9 – 39.4 | 200 |" in card
    assert "| bpc | bits_per_char ↓ | 1.234 |" in card
    assert "Run `soro-1b` of `out/sft-1b/final` (local backend, weights sha256 `abababababababab…`)" in card
    assert "LoRA adapter of the last stage is merged" in card


def test_multimodal_gemma3_loads_and_exports_as_text_only(multimodal_checkpoint: Path, tmp_path: Path) -> None:
    import torch
    from safetensors import safe_open
    from transformers import AutoModelForCausalLM, Gemma3ForCausalLM, Gemma3ForConditionalGeneration

    from training.common.models import is_multimodal, load_causal_lm

    assert is_multimodal(str(multimodal_checkpoint))
    full = Gemma3ForConditionalGeneration.from_pretrained(multimodal_checkpoint)
    text_only = load_causal_lm(str(multimodal_checkpoint))
    assert type(text_only) is Gemma3ForCausalLM
    assert sum(p.numel() for p in text_only.parameters()) < sum(p.numel() for p in full.parameters())
    torch.testing.assert_close(_logits(text_only), _logits(full))

    folder = export_model(multimodal_checkpoint, tmp_path / "text", dtype="float32").folder
    with safe_open(str(folder / "model.safetensors"), "pt") as weights:
        names = list(weights.keys())
    assert names and not any("vision" in name or "multi_modal" in name for name in names)
    reloaded: Any = AutoModelForCausalLM.from_pretrained(folder)
    assert type(reloaded) is Gemma3ForCausalLM
    torch.testing.assert_close(_logits(reloaded), _logits(full))


@pytest.mark.parametrize(
    "text",
    [
        '{"name": "suite", "tasks": ["tajlib"], "config": {"limit": 5}}',  # run.json
        '{"task": "tajlib", "metrics": [{"name": "accuracy", "samples": [[1.0]]}], "items": [{"id": "1"}]}',
        '{"format": "soro-eval-results/1", "name": "x", "model": "m", "model_hash": null, "date": "d", '
        '"backend": "local", "scores": [{"task": "t", "metric": "accuracy", "value": "high"}]}',
    ],
)
def test_export_refuses_json_that_is_not_eval_results(lora_run: Path, tmp_path: Path, text: str) -> None:
    wrong = tmp_path / "other.json"
    wrong.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=r"not an evaluation results file|scores\[0\]"):
        export_model(lora_run, tmp_path / "out", eval_results=wrong)
    assert not (tmp_path / "out").exists()  # refused before writing anything
