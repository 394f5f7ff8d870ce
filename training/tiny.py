"""A tiny Gemma 3 model folder that vLLM serves as is: for tests, the demo and quick experiments.

The folder has the same shape as a real Soro model (safetensors weights, ``tokenizer.json``, a Gemma 3 chat
template, ``generation_config.json`` with both end-of-turn ids), only small enough to build in seconds.

This module runs in two environments: the training venv and vLLM's own venv (older transformers, the project
not installed). It therefore imports only the standard library, torch, transformers and tokenizers, and has a
plain ``argparse`` entry point, run as a module or as a file::

    PYTHONPATH=. ~/.cache/soro/vllm-0.32.0/bin/python -m training.tiny --out /tmp/tiny --train-seconds 60
    ~/.cache/soro/vllm-0.32.0/bin/python -P training/tiny.py --out /tmp/tiny
"""

from __future__ import annotations

import argparse
import logging
import math
import random
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import Gemma3ForCausalLM, Gemma3TextConfig, GenerationConfig, PreTrainedTokenizerFast
from transformers.utils import logging as hf_logging

PAD, EOS, BOS, UNK = "<pad>", "<eos>", "<bos>", "<unk>"
START_OF_TURN, END_OF_TURN = "<start_of_turn>", "<end_of_turn>"
# Gemma's order for the first four, so pad/eos/bos/unk get ids 0/1/2/3 as in the real checkpoints.
SPECIAL_TOKENS = (PAD, EOS, BOS, UNK, START_OF_TURN, END_OF_TURN)

# Gemma 3's template without the image parts: a system message has no turn of its own, it is folded into
# the first user turn; the assistant's turns are called "model".
GEMMA3_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{%- if messages[0]['role'] == 'system' -%}"
    "{%- if messages[0]['content'] is string -%}"
    "{%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}"
    "{%- else -%}"
    "{%- set first_user_prefix = messages[0]['content'][0]['text'] + '\n\n' -%}"
    "{%- endif -%}"
    "{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}"
    "{%- set first_user_prefix = '' -%}"
    "{%- set loop_messages = messages -%}"
    "{%- endif -%}"
    "{%- for message in loop_messages -%}"
    "{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{%- endif -%}"
    "{%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}"
    "{{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else '') }}"
    "{%- if message['content'] is string -%}"
    "{{ message['content'] | trim }}"
    "{%- else -%}"
    "{%- for item in message['content'] if item['type'] == 'text' -%}"
    "{{ item['text'] | trim }}"
    "{%- endfor -%}"
    "{%- endif -%}"
    "{{ '<end_of_turn>\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}"
    "{{ '<start_of_turn>model\n' }}"
    "{%- endif -%}"
)

# The project's Tajik sample (``training.assets.TAJIK_SAMPLE``), found by path: run as a script in vLLM's
# venv this module imports nothing from the project.
_DEFAULT_TEXT = Path(__file__).with_name("assets") / "tajik_sample.txt"
logger = logging.getLogger(__name__)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def train_tokenizer(texts: Iterable[str], vocab_size: int = 512) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer with Gemma's special tokens and chat template, trained on ``texts``.

    Byte-level means every string can be encoded, whatever the training text lacked.
    """
    tokenizer = Tokenizer(models.BPE(unk_token=None))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    # Like Gemma's tokenizer: plain encoding starts with <bos>; chat prompts carry it in the template.
    bos_id = tokenizer.token_to_id(BOS)
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, bos_id)]
    )
    fast = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tokenizer,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=UNK,
        model_max_length=512,
    )
    fast.add_special_tokens({"additional_special_tokens": [START_OF_TURN, END_OF_TURN]})
    fast.chat_template = GEMMA3_CHAT_TEMPLATE
    return fast


def tiny_gemma3_config(vocab_size: int, **overrides: Any) -> Gemma3TextConfig:
    """The smallest Gemma 3 shape vLLM's CPU backend serves: one sliding and one full attention layer.

    ``head_dim`` is 32 because vLLM's CPU attention rejects 16 (only at the first request, after ``/health``
    already said OK).
    """
    fields: dict[str, Any] = {
        "vocab_size": vocab_size,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "layer_types": ["sliding_attention", "full_attention"],
        "sliding_window": 64,
        "num_attention_heads": 4,
        "num_key_value_heads": 1,
        "head_dim": 32,
        "query_pre_attn_scalar": 32,
        "max_position_embeddings": 512,
        "pad_token_id": SPECIAL_TOKENS.index(PAD),
        "eos_token_id": [SPECIAL_TOKENS.index(EOS), SPECIAL_TOKENS.index(END_OF_TURN)],
        "bos_token_id": SPECIAL_TOKENS.index(BOS),
        "tie_word_embeddings": True,
        "architectures": ["Gemma3ForCausalLM"],
        "dtype": "float32",
    }
    fields.update(overrides)
    return Gemma3TextConfig(**fields)


def build_tiny_model(
    out_dir: Path,
    texts: Sequence[str],
    *,
    seed: int = 0,
    train_seconds: float = 0.0,
    vocab_size: int = 512,
    config_overrides: dict[str, Any] | None = None,
) -> Path:
    """Build a tiny Gemma 3 folder in ``out_dir``: seeded random weights, trained on ``texts`` if asked.

    ``config_overrides`` change ``tiny_gemma3_config``'s shape (e.g. a hidden size that INT4's groups of 128
    divide).

    With ``train_seconds > 0`` a plain causal-LM loop runs on the texts and on chat turns made from them, so the
    model babbles words of the texts' language and learns to close its turn with ``<end_of_turn>``.
    """
    if not texts:
        raise ValueError("build_tiny_model needs at least one text to train its tokenizer on")
    torch.manual_seed(seed)
    tokenizer = train_tokenizer(texts, vocab_size=vocab_size)
    config = tiny_gemma3_config(len(tokenizer), **(config_overrides or {}))
    model = Gemma3ForCausalLM(config)
    if train_seconds > 0:
        _train(model, _training_ids(tokenizer, texts), seconds=train_seconds, seed=seed)
    model.eval()  # type: ignore[no-untyped-call]

    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    GenerationConfig(  # type: ignore[no-untyped-call]
        bos_token_id=config.bos_token_id,
        pad_token_id=config.pad_token_id,
        eos_token_id=[tokenizer.convert_tokens_to_ids(EOS), tokenizer.convert_tokens_to_ids(END_OF_TURN)],
    ).save_pretrained(out_dir)
    return out_dir


def _paragraphs(texts: Sequence[str]) -> Iterator[str]:
    for text in texts:
        for paragraph in text.split("\n\n"):
            if paragraph.strip():
                yield paragraph.strip()


def _chat_turns(paragraph: str) -> list[tuple[str, str]]:
    """Question/answer pairs: dialogue lines ("— …") pair up; prose answers its own first sentence."""
    lines = [line.removeprefix("— ").strip() for line in paragraph.splitlines()]
    if len(lines) > 1 and paragraph.startswith("— "):
        return list(zip(lines[::2], lines[1::2], strict=False))
    sentences = _SENTENCE_END.split(" ".join(paragraph.split()), maxsplit=1)
    return [(sentences[0], sentences[1])] if len(sentences) == 2 else []


def _training_ids(tokenizer: PreTrainedTokenizerFast, texts: Sequence[str]) -> torch.Tensor:
    """One token stream: each paragraph as plain text, then as chat turns that end with ``<end_of_turn>``."""
    ids: list[int] = []
    eos_id = tokenizer.convert_tokens_to_ids(EOS)
    for paragraph in _paragraphs(texts):
        ids += tokenizer(paragraph)["input_ids"] + [eos_id]
        for question, answer in _chat_turns(paragraph):
            chat = [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
            rendered = tokenizer.apply_chat_template(chat, tokenize=False)
            ids += tokenizer(rendered, add_special_tokens=False)["input_ids"]
    return torch.tensor(ids, dtype=torch.long)


def _train(model: Gemma3ForCausalLM, ids: torch.Tensor, *, seconds: float, seed: int) -> None:
    """Next-token training on random windows of ``ids`` until ``seconds`` have passed.

    The learning rate warms up over 50 steps, then follows a cosine over the time budget (the step count is
    unknown in advance and depends on how busy the machine is).
    """
    block = min(128, len(ids) - 1)  # the model shifts labels itself
    batch_size = 16
    peak_lr = 3e-3
    generator = random.Random(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=peak_lr, weight_decay=0.0)
    model.train()
    # One thread: the model is too small to gain from two, and on a busy machine OpenMP's threads wait for
    # each other at every op (measured 55 ms per step with one thread, 0.2–3 s with two on 2 shared cores).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        step, last_loss = _train_steps(
            model,
            optimizer,
            ids,
            block=block,
            batch_size=batch_size,
            seconds=seconds,
            peak_lr=peak_lr,
            generator=generator,
        )
    finally:
        torch.set_num_threads(threads)
    if not math.isfinite(last_loss):
        raise RuntimeError("tiny model training diverged (loss is not finite)")
    logger.info(
        "trained %d steps of %d×%d tokens in %.0f s, last loss %.3f", step, batch_size, block, seconds, last_loss
    )


def _train_steps(
    model: Gemma3ForCausalLM,
    optimizer: torch.optim.Optimizer,
    ids: torch.Tensor,
    *,
    block: int,
    batch_size: int,
    seconds: float,
    peak_lr: float,
    generator: random.Random,
) -> tuple[int, float]:
    started = time.monotonic()
    step = 0
    last_loss = 0.0
    while (elapsed := time.monotonic() - started) < seconds:
        starts = [generator.randrange(len(ids) - block + 1) for _ in range(batch_size)]
        batch = torch.stack([ids[start : start + block] for start in starts])
        decay = 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * elapsed / seconds))
        for group in optimizer.param_groups:
            group["lr"] = peak_lr * min(1.0, (step + 1) / 50) * decay
        loss = model(input_ids=batch, labels=batch).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        step += 1
        last_loss = loss.item()
    return step, last_loss


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m training.tiny", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="model folder to write")
    parser.add_argument(
        "--text", type=Path, action="append", help="UTF-8 text to train on (repeatable; default: the Tajik sample)"
    )
    parser.add_argument("--train-seconds", type=float, default=0.0, help="0 keeps the random weights")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--vocab-size", type=int, default=512)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # the caller logs this process's output to a file
    texts = [path.read_text(encoding="utf-8") for path in (args.text or [_DEFAULT_TEXT])]
    build_tiny_model(args.out, texts, seed=args.seed, train_seconds=args.train_seconds, vocab_size=args.vocab_size)
    print(args.out)


if __name__ == "__main__":
    main()
