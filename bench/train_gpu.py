"""Continual-pretraining throughput of a Gemma-3-1B-shaped model: tokens/s, peak memory and MFU.

Builds the model from Gemma 3 1B's published config values (random weights, nothing downloaded), packs
synthetic documents into sequences with the CPT packer (training.cpt.data.pack), and times optimizer steps
in bf16 at sequence length 4096:

    python bench/train_gpu.py                  # on a GPU: the 1B shape, 4096 tokens per sequence
    python bench/train_gpu.py --tiny           # on a CPU, in well under a minute: keeps this script working

FLOPs per trained token (forward + backward = 3 × forward):
    6 · N  +  Σ_layers 12 · n_heads · head_dim · ctx_layer
N counts every parameter once (the tied embedding stands for the lm_head matmul); ctx_layer is the mean number
of keys a query attends to in a causal sequence of length S: (S + 1) / 2 for global layers, and the mean of
min(i + 1, W) for sliding-window layers (W = 512). MFU = achieved FLOP/s ÷ peak dense bf16 FLOP/s of the card
(H100 SXM and H200: 989 TFLOP/s; other cards: pass --peak-tflops). Recomputation for gradient checkpointing is
not counted as useful work, so turning it on lowers MFU.
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# Gemma 3 1B (google/gemma-3-1b-pt config.json).
GEMMA3_1B: dict[str, Any] = {
    "vocab_size": 262144,
    "hidden_size": 1152,
    "intermediate_size": 6912,
    "num_hidden_layers": 26,
    "num_attention_heads": 4,
    "num_key_value_heads": 1,
    "head_dim": 256,
    "max_position_embeddings": 32768,
    "sliding_window": 512,
    "query_pre_attn_scalar": 256,
    "rms_norm_eps": 1e-6,
    "hidden_activation": "gelu_pytorch_tanh",
    "tie_word_embeddings": True,
    "rope_parameters": {
        "full_attention": {"rope_type": "default", "rope_theta": 1_000_000.0},
        "sliding_attention": {"rope_type": "default", "rope_theta": 10_000.0},
    },
}
# Dense bf16 tensor-core peaks (no sparsity), FLOP/s.
PEAK_BF16 = {"H100": 989e12, "H200": 989e12}


@dataclass(frozen=True)
class Result:
    device: str
    shape: str
    params: int
    seq_len: int
    batch_size: int
    steps: int
    tokens_per_second: float
    step_seconds: float
    peak_memory_gib: float
    achieved_tflops: float
    mfu: float | None


def mean_context(seq_len: int, window: int | None) -> float:
    """Mean number of keys per query in a causal sequence (limited to ``window`` for sliding layers)."""
    if window is None or window >= seq_len:
        return (seq_len + 1) / 2
    return sum(min(i + 1, window) for i in range(seq_len)) / seq_len


def flops_per_token(config: Any, params: int, seq_len: int) -> float:
    attention = 0.0
    for layer_type in config.layer_types:
        window = config.sliding_window if layer_type == "sliding_attention" else None
        attention += 12 * config.num_attention_heads * config.head_dim * mean_context(seq_len, window)
    return 6 * params + attention


def packed_batches(vocab_size: int, seq_len: int, sequences: int, seed: int) -> Any:
    """Synthetic documents of 64–3000 tokens, packed across their boundaries as CPT packs the corpus."""
    import torch
    from datasets import Dataset

    from training.cpt.data import pack

    rng = random.Random(seed)
    documents: list[list[int]] = []
    while sum(map(len, documents)) < (sequences + 1) * seq_len:
        length = rng.randint(64, 3000)
        documents.append([2, *(rng.randrange(4, vocab_size) for _ in range(length)), 1])
    packed = pack(Dataset.from_dict({"input_ids": documents}), seq_len)
    return torch.tensor(packed["input_ids"][:sequences])


def peak_flops(device_name: str, override_tflops: float | None) -> float | None:
    if override_tflops:
        return override_tflops * 1e12
    return next((peak for card, peak in PEAK_BF16.items() if card in device_name), None)


def run(args: argparse.Namespace) -> Result:
    import torch
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    from training.tiny import tiny_gemma3_config

    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    if args.tiny:
        config = tiny_gemma3_config(512)
        shape = "tiny (hidden 64, 2 layers)"
    else:
        config = Gemma3TextConfig(**GEMMA3_1B)
        shape = "Gemma 3 1B"
    config._attn_implementation = args.attn
    torch.manual_seed(0)
    model = Gemma3ForCausalLM(config)
    model.to(device)  # type: ignore[arg-type]
    if args.gradient_checkpointing:
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    model.config.use_cache = False
    model.train()
    params = sum(p.numel() for p in model.parameters())
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.0, fused=cuda)
    step_model = torch.compile(model) if args.compile else model
    total_steps = args.warmup_steps + args.steps
    data = packed_batches(config.vocab_size, args.seq_len, total_steps * args.batch_size, seed=0)
    # bf16 autocast over fp32 master weights: the "bf16-mixed" precision of the CPT configs.
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=not args.fp32)

    def step(index: int) -> None:
        batch = data[index * args.batch_size : (index + 1) * args.batch_size].to(device, non_blocking=True)
        with autocast:
            loss = step_model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for index in range(args.warmup_steps):
        step(index)
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for index in range(args.warmup_steps, total_steps):
        step(index)
    if cuda:
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start

    tokens = args.steps * args.batch_size * args.seq_len
    achieved = flops_per_token(config, params, args.seq_len) * tokens / elapsed
    device_name = torch.cuda.get_device_name() if cuda else "CPU"
    peak = peak_flops(device_name, args.peak_tflops) if cuda else None
    memory = (
        torch.cuda.max_memory_allocated() / 2**30
        if cuda
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 2**30
    )
    return Result(
        device=device_name,
        shape=shape,
        params=params,
        seq_len=args.seq_len,
        batch_size=args.batch_size,
        steps=args.steps,
        tokens_per_second=tokens / elapsed,
        step_seconds=elapsed / args.steps,
        peak_memory_gib=memory,
        achieved_tflops=achieved / 1e12,
        mfu=achieved / peak if peak else None,
    )


def table(result: Result, args: argparse.Namespace) -> str:
    rows = [
        ("device", result.device),
        ("shape", f"{result.shape}, {result.params / 1e6:.1f} M parameters"),
        ("precision", "fp32" if args.fp32 else "bf16 autocast, fp32 master weights"),
        ("attention", args.attn + (" + torch.compile" if args.compile else "")),
        ("gradient checkpointing", "on" if args.gradient_checkpointing else "off"),
        ("sequence length × batch", f"{result.seq_len} × {result.batch_size} (packed)"),
        ("timed steps", str(result.steps)),
        ("step time", f"{result.step_seconds * 1000:.1f} ms"),
        ("tokens/s", f"{result.tokens_per_second:,.0f}"),
        ("peak memory", f"{result.peak_memory_gib:.2f} GiB" + ("" if "CPU" not in result.device else " (process RSS)")),
        ("model TFLOP/s", f"{result.achieved_tflops:.2f}"),
        ("MFU", f"{result.mfu:.1%}" if result.mfu is not None else "n/a (no known bf16 peak for this device)"),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"| {name.ljust(width)} | {value} |" for name, value in rows)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny shape, short sequences: a CPU check in seconds")
    parser.add_argument("--seq-len", type=int, default=None, help="tokens per sequence (default 4096; tiny 128)")
    parser.add_argument("--batch-size", type=int, default=None, help="sequences per step (default 4; tiny 2)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default 10; tiny 3)")
    parser.add_argument("--warmup-steps", type=int, default=None, help="untimed steps first (default 3; tiny 1)")
    parser.add_argument("--attn", default="sdpa", choices=["sdpa", "eager", "flash_attention_2", "flex_attention"])
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--fp32", action="store_true", help="no bf16 autocast (the default on CPU with --tiny)")
    parser.add_argument("--peak-tflops", type=float, default=None, help="peak dense bf16 TFLOP/s of this card")
    args = parser.parse_args(argv)
    defaults = (
        {"seq_len": 128, "batch_size": 2, "steps": 3, "warmup_steps": 1}
        if args.tiny
        else {"seq_len": 4096, "batch_size": 4, "steps": 10, "warmup_steps": 3}
    )
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.tiny and "--fp32" not in (argv if argv is not None else sys.argv):
        import torch

        args.fp32 = not torch.cuda.is_available()
    return args


def main(argv: list[str] | None = None) -> Result:
    args = parse_args(argv)
    result = run(args)
    print(table(result, args))
    return result


if __name__ == "__main__":
    main()
