"""The long-lived objects of a bot-side process, built once from the settings and closed together."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from redis.asyncio import Redis
from sqlalchemy import text as sql
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.limits import UserLimits
from bot.pipeline import Pipeline, TurnOptions
from bot.store.db import create_engine, session_factory
from inference.queue import RequestQueue, StreamNames, redis_client
from soro.metrics import BotMetrics
from soro.settings import Settings


@dataclass
class Services:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    redis: Redis
    queue: RequestQueue
    limits: UserLimits
    metrics: BotMetrics
    pipeline: Pipeline

    @classmethod
    def create(cls, settings: Settings, turn_options: Mapping[str, TurnOptions] | None = None) -> Services:
        engine = create_engine(settings.database_url)
        sessions = session_factory(engine)
        redis = redis_client(settings.redis_url)
        queue = RequestQueue(redis, StreamNames(settings.stream_prefix))
        limits = UserLimits(
            redis, settings.stream_prefix, settings.user_messages_per_minute, settings.user_messages_per_day
        )
        metrics = BotMetrics()
        pipeline = Pipeline(settings, sessions, queue, limits, metrics, turn_options)
        return cls(settings, engine, sessions, redis, queue, limits, metrics, pipeline)

    async def check_database(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(sql("SELECT 1"))

    async def check_redis(self) -> None:
        await self.redis.ping()

    async def close(self) -> None:
        await self.pipeline.settle()
        await self.redis.aclose()
        await self.engine.dispose()
