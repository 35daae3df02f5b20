"""How the parts the console depends on are doing."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from console.base.db import Database

TIMEOUT_SECONDS = 2.0


async def check(db: Database, redis: Redis | None) -> dict[str, str]:
    database = await _probe(db.ping())
    if redis is None:
        return {"database": database, "redis": "disabled"}
    return {"database": database, "redis": await _probe(_ping_redis(redis))}


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
