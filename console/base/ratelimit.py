"""Counting requests per key in fixed windows, and remembering what a one-time token was for.

With Redis the counts are shared by every process (INCR and a TTL per window); without it, as
under the embedded default, one process holds them in memory, which is then all there is.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from console.base.errors import Throttled

log = logging.getLogger("mazkira.ratelimit")

PREFIX = "mz:rl:"
# The in-memory store forgets old windows once it holds this many keys.
MAX_LOCAL_KEYS = 100_000


class Limiter(Protocol):
    now: Callable[[], float]

    async def hit(self, key: str, limit: int, window_seconds: int) -> int | None:
        """Count one request; the seconds to wait when it is over `limit` in this window."""

    async def seen(self, key: str, window_seconds: int) -> int:
        """How many requests `key` made in this window (without counting one)."""

    async def remember(self, key: str, value: str, ttl_seconds: int) -> str:
        """Keep `value` under `key` for `ttl_seconds` unless a value is kept there already;
        the value kept (this one or the earlier one)."""


class LocalLimiter:
    def __init__(self, now: Callable[[], float] = time.time) -> None:
        self.now = now
        self.counts: dict[str, tuple[int, int]] = {}  # key -> (window number, count)
        self.kept: dict[str, tuple[str, float]] = {}  # key -> (value, until)

    async def hit(self, key: str, limit: int, window_seconds: int) -> int | None:
        now = self.now()
        window = int(now // window_seconds)
        if len(self.counts) > MAX_LOCAL_KEYS:
            self.counts = {k: v for k, v in self.counts.items() if v[0] == window}
        number, count = self.counts.get(key, (window, 0))
        count = count + 1 if number == window else 1
        self.counts[key] = (window, count)
        if count > limit:
            return max(1, math.ceil((window + 1) * window_seconds - now))
        return None

    async def seen(self, key: str, window_seconds: int) -> int:
        number, count = self.counts.get(key, (-1, 0))
        return count if number == int(self.now() // window_seconds) else 0

    async def remember(self, key: str, value: str, ttl_seconds: int) -> str:
        now = self.now()
        if len(self.kept) > MAX_LOCAL_KEYS:
            self.kept = {k: kept for k, kept in self.kept.items() if kept[1] > now}
        earlier = self.kept.get(key)
        if earlier is not None and earlier[1] > now:
            return earlier[0]
        self.kept[key] = (value, now + ttl_seconds)
        return value


class RedisLimiter:
    """Counts shared by every process; while Redis is away (restarting, flushed, down) this
    process counts and remembers alone, so the limits still hold per process and no request
    fails for it. Redis is asked again on every request, so sharing resumes once it is back."""

    def __init__(self, redis: Redis, now: Callable[[], float] = time.time) -> None:
        self.redis = redis
        self.now = now
        self.fallback = LocalLimiter(now)

    async def hit(self, key: str, limit: int, window_seconds: int) -> int | None:
        now = self.now()
        window = int(now // window_seconds)
        name = f"{PREFIX}{key}:{window}"
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.incr(name)
                pipe.expire(name, window_seconds + 1)
                count, _ = await pipe.execute()
        except (RedisError, OSError) as error:
            log.warning("Redis unavailable (%s): counting %s in this process", error, key)
            return await self.fallback.hit(key, limit, window_seconds)
        if int(count) > limit:
            return max(1, math.ceil((window + 1) * window_seconds - now))
        return None

    async def seen(self, key: str, window_seconds: int) -> int:
        name = f"{PREFIX}{key}:{int(self.now() // window_seconds)}"
        try:
            found = await self.redis.get(name)
        except (RedisError, OSError):
            return await self.fallback.seen(key, window_seconds)
        return int(found or 0)

    async def remember(self, key: str, value: str, ttl_seconds: int) -> str:
        name = f"{PREFIX}kept:{key}"
        try:
            if await self.redis.set(name, value.encode(), nx=True, ex=ttl_seconds):
                return value
            earlier = await self.redis.get(name)
        except (RedisError, OSError) as error:
            log.warning("Redis unavailable (%s): remembering %s in this process", error, key)
            return await self.fallback.remember(key, value, ttl_seconds)
        return value if earlier is None else bytes(earlier).decode()


def limiter_for(redis: Redis | None) -> Limiter:
    return RedisLimiter(redis) if redis is not None else LocalLimiter()


async def check(limiter: Limiter, key: str, limit: int, window_seconds: int = 60) -> None:
    """Raise 429 when `key` went over `limit` requests in this window (a limit of 0 is none)."""
    if limit <= 0:
        return
    wait = await limiter.hit(key, limit, window_seconds)
    if wait is not None:
        raise Throttled(
            "Too many requests; try again in %(seconds)s seconds.", retry_after=wait, seconds=wait
        )


async def check_web_form(
    limiter: Limiter, *, slug: str, key: str, address: str, per_key: int, per_address: int
) -> None:
    """A business's web form: posts a minute per intake key and per client address (429)."""
    await check(limiter, f"form:{slug}:{key[:16]}", per_key)
    await check(limiter, f"address:{address}", per_address)


async def refuse_a_forger(limiter: Limiter, address: str, limit: int) -> None:
    """429 for an address that sent `limit` bad webhook signatures this minute."""
    if limit > 0 and await limiter.seen(f"bad-signature:{address}", 60) >= limit:
        wait = max(1, math.ceil(60 - limiter.now() % 60))
        raise Throttled(
            "Too many requests; try again in %(seconds)s seconds.", retry_after=wait, seconds=wait
        )


async def count_a_bad_signature(limiter: Limiter, address: str) -> None:
    await limiter.hit(f"bad-signature:{address}", 2**31, 60)
