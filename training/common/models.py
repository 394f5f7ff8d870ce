"""Loading a Gemma 3 checkpoint as a text-only causal language model.

Gemma 3 270M and 1B are text-only (``Gemma3ForCausalLM``). The 4B, 12B and 27B checkpoints are multimodal
(``Gemma3ForConditionalGeneration``: a SigLIP vision tower, a projector and the language model). Training and
serving Soro needs only the language model, so those load as ``Gemma3ForCausalLM`` from the language-model
weights alone; saved again, the folder is a text-only model that vLLM serves as ``Gemma3ForCausalLM``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from training.common.options import AttentionKernel, Precision

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

# Where the language model sits inside a multimodal checkpoint: the published layout and the one that
# transformers 4.5x wrote, mapped onto Gemma3ForCausalLM's own names.
MULTIMODAL_TEXT_KEYS = {
    r"^language_model\.model\.": "model.",
    r"^language_model\.lm_head\.": "lm_head.",
    r"^model\.language_model\.": "model.",
}
MULTIMODAL_ONLY_KEYS = (
    r"^vision_tower\.",
    r"^multi_modal_projector\.",
    r"^model\.vision_tower\.",
    r"^model\.multi_modal_projector\.",
)


def torch_dtype(precision: Precision) -> torch.dtype:
    """The dtype weights are held in: bf16 only for "bf16-true"; mixed precision keeps fp32 master weights."""
    import torch

    return torch.bfloat16 if precision == "bf16-true" else torch.float32


def is_multimodal(name_or_path: str) -> bool:
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(name_or_path)
    return config.get_text_config() is not config


def load_causal_lm(
    name_or_path: str,
    *,
    precision: Precision = "32-true",
    attn_implementation: AttentionKernel = "sdpa",
    quantization_config: object | None = None,
) -> PreTrainedModel:
    """A causal LM from a local folder or hub id; multimodal Gemma 3 checkpoints yield their text model only."""
    from transformers import AutoConfig, AutoModelForCausalLM, Gemma3ForCausalLM

    config = AutoConfig.from_pretrained(name_or_path)
    text_config = config.get_text_config()
    common: dict[str, Any] = {
        "dtype": torch_dtype(precision),
        "attn_implementation": attn_implementation,
        "quantization_config": quantization_config,
    }
    if text_config is config:
        return AutoModelForCausalLM.from_pretrained(name_or_path, **common)
    if text_config.model_type != "gemma3_text":
        raise ValueError(
            f"{name_or_path} is a multimodal {config.model_type} checkpoint; only Gemma 3 ones can be loaded as "
            "their text model"
        )

    class _Gemma3TextOfMultimodal(Gemma3ForCausalLM):  # type: ignore[no-untyped-call]
        # The vision tower's weights are expected to be left behind: no load report listing every one of them.
        _keys_to_ignore_on_load_unexpected = list(MULTIMODAL_ONLY_KEYS)  # noqa: RUF012

    model = _Gemma3TextOfMultimodal.from_pretrained(
        name_or_path, config=text_config, key_mapping=MULTIMODAL_TEXT_KEYS, **common
    )
    # From here on it is a plain Gemma3ForCausalLM, and save_pretrained records that architecture. transformers
    # remembers the key mapping used at load time and would reverse it on save, writing the multimodal names
    # back; forgetting it makes the saved folder an ordinary text-only checkpoint.
    model.__class__ = Gemma3ForCausalLM  # type: ignore[assignment]
    model.config.architectures = ["Gemma3ForCausalLM"]
    model._weight_conversions = None  # type: ignore[assignment]
    return model


def load_tokenizer(name_or_path: str) -> PreTrainedTokenizerBase:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(name_or_path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer
