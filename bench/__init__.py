"""Benchmarks, run by hand as `python -m bench.NAME`; each prints one JSON object last."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when it is installed (as uvicorn picks it for the servers), so the
    load generator's own cost stays small; else asyncio's."""
    with contextlib.suppress(ImportError):
        import uvloop

        return uvloop.new_event_loop
    return None


def intake_env(url: str, *, secret: str, redis: str | None = None) -> dict[str, str]:
    """The environment of a `mazkira serve` that takes leads from one load generator."""
    env = {
        "DATABASE_URL": url,
        "SECRET_KEY": secret + "-" + "k" * 40,
        # The load comes from one address and one API token: limits out of its reach, still
        # counted per request.
        "INTAKE_RATE_PER_KEY": "100000000",
        "INTAKE_RATE_PER_ADDRESS": "100000000",
        "API_RATE_PER_TOKEN": "100000000",
    }
    if redis:
        env["REDIS_URL"] = redis
    return env
