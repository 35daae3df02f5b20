"""How the processes log: plain lines for a person, or one JSON object per line for a log
collector (`LOG_FORMAT=json`), each carrying the id of the request it belongs to (and a job
the request asked for carries it on: `carrying`)."""

from __future__ import annotations

import logging
import logging.config
import re
import uuid
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from functools import wraps
from typing import Any

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s"
# An id a proxy or a client sent is kept when it looks like one (letters, digits, a few marks).
GIVEN_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")

current_request_id: ContextVar[str] = ContextVar("request_id", default="-")


def new_request_id(given: str | None = None) -> str:
    if given and GIVEN_ID.fullmatch(given):
        return given
    return uuid.uuid4().hex


class RequestIdFilter(logging.Filter):
    """Stamps every record with the request (or job) it was written for, "-" outside one."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id.get()
        return True


def config(log_format: str, level: str = "INFO") -> dict[str, Any]:
    """A `logging.config.dictConfig` for the process, uvicorn's loggers included (uvicorn takes
    it as its `log_config`)."""
    if log_format not in FORMATS:
        raise ValueError(f"LOG_FORMAT must be one of {', '.join(FORMATS)}, not {log_format!r}")
    formatter: dict[str, Any] = (
        {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": JSON_FIELDS,
            "datefmt": "%Y-%m-%dT%H:%M:%S%z",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        }
        if log_format == "json"
        else {"format": TEXT_FORMAT}
    )
    handler = {
        "class": "logging.StreamHandler",
        "formatter": "main",
        "filters": ["request_id"],
        "stream": "ext://sys.stderr",
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {"main": formatter},
        "handlers": {"main": handler},
        "root": {"handlers": ["main"], "level": level},
        "loggers": {
            # uvicorn's own handlers would write its lines a second time
            name: {"handlers": [], "propagate": True, "level": level}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "arq")
        },
    }


def configure(log_format: str, level: str = "INFO") -> None:
    logging.config.dictConfig(config(log_format, level))


Job = Callable[..., Awaitable[Any]]


def carrying(job: Job) -> Job:
    """A job that takes the id of the request that asked for it (`request_id=`, as the web
    process enqueues it into arq) and logs under it; a cron run logs under its own name."""

    @wraps(job)
    async def run(ctx: dict[str, Any], request_id: str | None = None, **kwargs: Any) -> Any:
        token = current_request_id.set(request_id or f"job:{job.__name__}")
        try:
            return await job(ctx, **kwargs)
        finally:
            current_request_id.reset(token)

    return run
