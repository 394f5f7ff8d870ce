"""Answered turns made through the real pipeline, as the delivery loop records them."""

from __future__ import annotations

from bot.pipeline import Inbound
from bot.services import Services
from inference.queue import ReplyEvent, ReplyKind


async def answered(
    services: Services, channel: str, address: str, key: str, question: str, answer: str, model: str = "soro"
) -> str:
    """``question`` from ``address`` and its ``answer``, delivered and recorded; returns the request id."""
    accepted = await services.pipeline.accept(Inbound(channel, address, question, key))
    assert accepted.request_id is not None, accepted
    await services.pipeline.claim_final(accepted.request_id)
    event = ReplyEvent(accepted.request_id, 0, channel, ReplyKind.FINAL, answer, model=model, completion_tokens=3)
    await services.pipeline.finish(event, answer)
    return accepted.request_id
