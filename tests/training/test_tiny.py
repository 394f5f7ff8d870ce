"""The tiny Gemma 3 folder that tests and the demo serve: it loads with the training stack as vLLM would use it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tajik.normalize import looks_tajik, normalize
from training.assets import TAJIK_SAMPLE

pytestmark = pytest.mark.train


def test_sample_text_is_tajik() -> None:
    text = TAJIK_SAMPLE.read_text(encoding="utf-8")
    assert 8_000 <= len(text.encode()) <= 15_000
    assert normalize(text) == text.strip()
    assert set("ғӣқӯҳҷ") <= set(text)
    paragraphs = [p for p in text.split("\n\n") if len(p) > 80]
    assert paragraphs and all(looks_tajik(p) for p in paragraphs)


def test_model_loads_as_causal_lm(tiny_model_dir: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert model.config.model_type == "gemma3_text"
    assert model.config.head_dim == 32  # vLLM's CPU attention rejects smaller heads
    assert model.config.layer_types == ["sliding_attention", "full_attention"]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([[2, 10, 11]])).logits
    assert logits.shape == (1, 3, model.config.vocab_size)
    assert torch.isfinite(logits).all()


def test_tokenizer_round_trips_tajik(tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    text = "Ҳаво имрӯз хеле гарм аст, аммо дар кӯҳҳо боди ғарбӣ ҷорӣ мешавад. Navruz 2026 🌷"
    ids = tokenizer(text)["input_ids"]
    assert ids[0] == tokenizer.bos_token_id
    assert tokenizer.decode(ids, skip_special_tokens=True) == text
    # Trained on Tajik: a Tajik word costs fewer tokens than its UTF-8 bytes.
    assert len(tokenizer("мактаб", add_special_tokens=False)["input_ids"]) < len("мактаб".encode()) / 2


def test_chat_template_is_gemma3(tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    messages = [
        {"role": "system", "content": "Ту Соро ҳастӣ."},
        {"role": "user", "content": "Салом!"},
        {"role": "assistant", "content": "Салом, дӯстам."},
        {"role": "user", "content": "Наврӯз кай аст?"},
    ]
    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert prompt == (
        "<bos><start_of_turn>user\nТу Соро ҳастӣ.\n\nСалом!<end_of_turn>\n"
        "<start_of_turn>model\nСалом, дӯстам.<end_of_turn>\n"
        "<start_of_turn>user\nНаврӯз кай аст?<end_of_turn>\n"
        "<start_of_turn>model\n"
    )
    ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]  # as vLLM tokenizes a chat prompt
    turn_ids = [tokenizer.convert_tokens_to_ids(token) for token in ("<start_of_turn>", "<end_of_turn>")]
    assert ids.count(turn_ids[0]) == 4 and ids.count(turn_ids[1]) == 3  # special tokens, not spelled out


def test_generation_config_stops_at_both_eos(tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    generation = json.loads((tiny_model_dir / "generation_config.json").read_text())
    assert generation["eos_token_id"] == tokenizer.convert_tokens_to_ids(["<eos>", "<end_of_turn>"])
    assert list((tiny_model_dir).glob("*.safetensors"))


def test_training_makes_the_model_predict_the_text(tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from training.tiny import build_tiny_model

    text = TAJIK_SAMPLE.read_text(encoding="utf-8")
    losses = []
    # Training is bounded by time, not steps (the demo trains for a fixed minute), so on a busy machine it takes
    # fewer steps: the bar is a clear drop, not a fixed number of steps' worth.
    for seconds in (0.0, 6.0):
        folder = build_tiny_model(tmp_path / f"t{seconds}", [text], seed=1, train_seconds=seconds)
        model = AutoModelForCausalLM.from_pretrained(folder)
        ids = AutoTokenizer.from_pretrained(folder)(text[:600], return_tensors="pt")["input_ids"]
        with torch.no_grad():
            losses.append(float(model(input_ids=ids, labels=ids).loss))
    assert losses[1] < losses[0] - 0.3
