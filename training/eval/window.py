"""One context-window rule for every backend, so a model folder and the same model served score alike.

The window is the model's own: ``max_position_embeddings`` in-process, ``max_model_len`` on a vLLM server. A
served completion with ``echo`` must still generate one token, so a scored sequence (prompt log-probabilities:
multiple-choice context and continuation, bits-per-character windows) holds at most ``window - 1`` tokens on
both backends; longer contexts lose their oldest tokens, longer texts are scored in windows
(``training.common.bpc.bpc_windows``). A generation prompt gets at most ``window - max_tokens`` tokens: a longer
one is not sent (a server would refuse it) and its reply counts as empty, with a warning.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

log = logging.getLogger(__name__)


def scored_length(window: int) -> int:
    """Tokens a log-probability request may hold (one position is left for the generated token)."""
    if window < 3:
        raise ValueError(f"a context window of {window} tokens is too small to score anything")
    return window - 1


def fit_pair(context: Sequence[int], continuation: Sequence[int], window: int) -> tuple[list[int], int]:
    """Context and continuation as one sequence within the window (oldest context tokens dropped first),
    and how many of its last tokens are the continuation's."""
    keep = scored_length(window)
    whole = [*context, *continuation][-keep:]
    return whole, min(len(continuation), len(whole) - 1)


def generation_budget(prompt_tokens: int, max_tokens: int, window: int) -> int:
    """New tokens a prompt of ``prompt_tokens`` may ask for within the window (0: the prompt does not fit)."""
    return max(0, min(max_tokens, window - prompt_tokens))


def warn_too_long(count: int, window: int, where: str) -> None:
    if count:
        log.warning("%s: %d prompt(s) leave no room to answer in the context window of %d tokens", where, count, window)


def move_trailing_spaces(context: str, continuation: str) -> tuple[str, str]:
    """lm-evaluation-harness's rule: a context's trailing spaces belong to the continuation."""
    spaces = len(context) - len(context.rstrip())
    if spaces:
        return context[:-spaces], context[-spaces:] + continuation
    return context, continuation
