"""Which model answers a conversation, and which system prompt version it was given.

A candidate model serves a stable share of conversations: the conversation id is hashed into [0, 1), and the
conversations below the share go to the candidate. The same conversation always lands on the same side, so a
dialogue never switches model halfway; a new conversation (/new, НАВ) may land on the other side.
"""

from __future__ import annotations

import hashlib

from soro.settings import Settings

_SALT = b"soro-candidate:"


def prompt_version(system_prompt: str) -> str:
    """A short, stable name of a system prompt's text: answers record it, so prompts can be compared too."""
    return hashlib.sha256(system_prompt.encode()).hexdigest()[:12]


def conversation_bucket(conversation_id: int) -> float:
    """Where ``conversation_id`` falls in [0, 1), uniformly and the same in every process."""
    digest = hashlib.sha256(_SALT + str(conversation_id).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def model_for(settings: Settings, conversation_id: int) -> str:
    candidate = settings.llm_candidate_model
    if candidate and conversation_bucket(conversation_id) < settings.llm_candidate_share:
        return candidate
    return settings.llm_model


def served_models(settings: Settings) -> list[str]:
    """The models turns may be routed to: the current one, then the candidate when it is on."""
    models = [settings.llm_model]
    if settings.llm_candidate_model and settings.llm_candidate_model != settings.llm_model:
        models.append(settings.llm_candidate_model)
    return models
