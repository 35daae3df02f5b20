"""How the parts the console depends on are doing."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from console.base.db import Database
from console.base.migrate import pending

TIMEOUT_SECONDS = 2.0


async def check(db: Database, redis: Redis | None) -> dict[str, str]:
    database = await _probe(db.ping())
    if redis is None:
        return {"database": database, "redis": "disabled"}
    return {"database": database, "redis": await _probe(_ping_redis(redis))}


async def ready(db: Database, redis: Redis | None) -> dict[str, str]:
    """`check`, and whether the schema is the one the code needs."""
    state = await check(db, redis)
    if state["database"] != "ok":
        return {**state, "migrations": "unknown"}
    try:
        behind = await asyncio.wait_for(pending(db), TIMEOUT_SECONDS)
    except (TimeoutError, SQLAlchemyError, OSError):
        return {**state, "migrations": "unknown"}
    return {**state, "migrations": "behind" if behind else "ok"}


async def _ping_redis(redis: Redis) -> bool:
    try:
        return bool(await redis.ping())
    except (RedisError, OSError):
        return False


async def _probe(probe: Awaitable[bool]) -> str:
    try:
        ok = await asyncio.wait_for(probe, TIMEOUT_SECONDS)
    except TimeoutError:
        return "down"
    return "ok" if ok else "down"
