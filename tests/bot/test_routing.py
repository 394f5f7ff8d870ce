"""A candidate model answers a stable share of conversations, chosen by the conversation, on real SQL and Redis."""

from collections.abc import AsyncIterator

import pytest

from bot.pipeline import Inbound, Outcome
from bot.routing import conversation_bucket, prompt_version
from bot.services import Services
from bot.store.models import Request
from inference.queue import ReplyEvent, ReplyKind
from tests.support.stack import queued, stack_settings

SHARE = 0.2


@pytest.fixture
async def services(postgres_url: str, redis_url: str) -> AsyncIterator[Services]:
    settings = stack_settings(
        postgres_url,
        redis_url,
        "http://127.0.0.1:9/v1",
        "soro",
        llm_candidate_model="soro-next",
        llm_candidate_share=SHARE,
        backlog_limit=10_000,
    )
    services = Services.create(settings)
    yield services
    keys = [key async for key in services.redis.scan_iter(f"{settings.stream_prefix}:*")]
    if keys:
        await services.redis.delete(*keys)
    await services.close()


async def test_the_candidate_gets_its_share_of_1000_conversations_and_keeps_them(services: Services) -> None:
    pipeline = services.pipeline
    for i in range(1000):
        accepted = await pipeline.accept(Inbound("telegram", str(20_000 + i), "Салом", f"c-{i}"))
        assert accepted.outcome is Outcome.QUEUED
    turns = await queued(services)
    share = sum(turn.model == "soro-next" for turn in turns) / len(turns)
    assert abs(share - SHARE) <= 0.05, share
    assert {turn.model for turn in turns} == {"soro", "soro-next"}

    # The next turns of the same conversations stay with the model that began them.
    first = {turn.conversation_id: turn.model for turn in turns}
    for i, turn in enumerate(turns[:60]):  # in the order they were accepted: user 20000 + i
        assert await pipeline.claim_final(turn.request_id) is not None
        event = ReplyEvent(
            turn.request_id, turn.conversation_id, "telegram", ReplyKind.FINAL, "Салом!", model=turn.model
        )
        await pipeline.finish(event, "Салом!")
        await pipeline.accept(Inbound("telegram", str(20_000 + i), "Боз як савол", f"c2-{i}"))
    later = (await queued(services))[1000:]
    assert len(later) == 60
    assert all(turn.model == first[turn.conversation_id] for turn in later)
    async with services.sessions() as session:
        request = await session.get(Request, later[0].request_id)
        assert request is not None and request.model == later[0].model
        assert request.prompt_version == prompt_version(services.settings.system_prompt)


def test_buckets_are_uniform_and_fixed() -> None:
    buckets = [conversation_bucket(i) for i in range(1, 10_001)]
    assert all(0 <= b < 1 for b in buckets)
    for share in (0.1, 0.5):
        assert abs(sum(b < share for b in buckets) / len(buckets) - share) < 0.02
    assert conversation_bucket(7) == conversation_bucket(7)
