"""Export a trained run as a model folder that vLLM serves as it is (``soro train export``).

The folder holds: safetensors weights (a LoRA adapter merged into its base first; a multimodal Gemma 3 reduced
to its text model), the tokenizer with Gemma 3's chat template, ``generation_config.json`` whose stop ids
are both Gemma end tokens (``<eos>`` and ``<end_of_turn>``; without the latter a chat answer runs on into an
invented next turn), and a model card.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from training.common.models import load_causal_lm, load_tokenizer
from training.common.run_summary import read_summary
from training.export.model_card import read_eval_results, render_model_card

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

log = logging.getLogger(__name__)

ExportDtype = Literal["bfloat16", "float16", "float32"]
ADAPTER_CONFIG = "adapter_config.json"
# Gemma ends a chat turn with <end_of_turn> and a document with <eos>; vLLM must stop at either.
GEMMA_STOP_TOKENS = ("<eos>", "<end_of_turn>")


@dataclass(frozen=True)
class ExportResult:
    folder: Path
    base_model: str
    merged_adapter: bool
    weight_bytes: int


def is_adapter(folder: Path) -> bool:
    return (folder / ADAPTER_CONFIG).is_file()


def adapter_base(folder: Path) -> str:
    """The base model a LoRA adapter was trained on, as peft recorded it."""
    config = json.loads((folder / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    base = config.get("base_model_name_or_path")
    if not base:
        raise ValueError(f"{folder / ADAPTER_CONFIG} does not name its base model: pass --base-model")
    return str(base)


def load_merged(source: Path, base_model: str | None = None) -> tuple[PreTrainedModel, str, bool]:
    """The model of ``source`` (adapter merged into its base when it is one), its base's name, and whether merged."""
    if is_adapter(source):
        from peft import PeftModel

        base = base_model or adapter_base(source)
        adapted = PeftModel.from_pretrained(load_causal_lm(base), str(source))
        return adapted.merge_and_unload(), base, True
    return load_causal_lm(str(source)), base_model or str(source), False


def stop_token_ids(tokenizer: PreTrainedTokenizerBase) -> list[int]:
    ids = []
    for token in GEMMA_STOP_TOKENS:
        token_id = tokenizer.convert_tokens_to_ids(token)
        if not isinstance(token_id, int) or token_id == tokenizer.unk_token_id:
            raise ValueError(f"the tokenizer has no {token} token: is this a Gemma 3 tokenizer?")
        ids.append(token_id)
    return ids


def write_generation_config(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, folder: Path) -> None:
    from transformers import GenerationConfig

    # Gemma 3's published sampling defaults; vLLM takes them as the defaults of every request.
    config = GenerationConfig(  # type: ignore[no-untyped-call]
        bos_token_id=tokenizer.bos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=stop_token_ids(tokenizer),
        do_sample=True,
        top_k=64,
        top_p=0.95,
    )
    model.generation_config = config
    config.save_pretrained(str(folder))


def weight_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.glob("*.safetensors"))


def export_model(
    source: Path,
    out_dir: Path,
    *,
    base_model: str | None = None,
    eval_results: Path | None = None,
    dtype: ExportDtype = "bfloat16",
    name: str | None = None,
) -> ExportResult:
    """Write the servable folder for the run output (full model or LoRA adapter) at ``source``."""
    import torch

    results = read_eval_results(eval_results)  # checked before any weights are loaded
    model, base, merged = load_merged(source, base_model)
    tokenizer = load_tokenizer(str(source))
    if not tokenizer.chat_template:
        raise ValueError(f"{source} has no chat template: a chat model cannot be served without one")
    model = model.to(getattr(torch, dtype))
    model.config.use_cache = True
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    write_generation_config(model, tokenizer, out_dir)

    summary = read_summary(source)
    (out_dir / "README.md").write_text(
        render_model_card(
            name or out_dir.name,
            summary,
            base_model=summary.origin() if summary else base,
            eval_results=results,
            merged_adapter=merged,
        ),
        encoding="utf-8",
    )
    if summary is not None:
        summary.write(out_dir)
    result = ExportResult(folder=out_dir, base_model=base, merged_adapter=merged, weight_bytes=weight_bytes(out_dir))
    log.info("exported %s → %s (%d MB of weights)", source, out_dir, result.weight_bytes // 2**20)
    return result
