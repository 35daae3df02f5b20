"""Small factories: make what a test needs, with overrides for what it is about."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from console.base.db import Database
from console.people import accounts
from models import Business, User

PASSWORD = "correct-horse-battery"
_counter = itertools.count(1)


async def make_business(session: AsyncSession, **overrides: Any) -> Business:
    n = next(_counter)
    fields: dict[str, Any] = {"slug": f"biz-{n}", "name": f"עסק {n}"}
    fields.update(overrides)
    return await accounts.create_business(session, **fields)


async def make_user(
    session: AsyncSession, role: str = "secretary", *businesses: Business, **overrides: Any
) -> User:
    n = next(_counter)
    fields: dict[str, Any] = {
        "email": f"{role}{n}@example.test",
        "password": PASSWORD,
        "role": role,
        "name": f"{role} {n}",
        "businesses": [b.slug for b in businesses],
    }
    fields.update(overrides)
    return await accounts.create_user(session, **fields)


@dataclass
class Agency:
    """Two businesses, A and B: a secretary who answers for both, and an owner each."""

    a: Business
    b: Business
    secretary: User
    owner_a: User
    owner_b: User


async def make_agency(
    session: AsyncSession,
    *,
    a: dict[str, Any] | None = None,
    b: dict[str, Any] | None = None,
    secretary: dict[str, Any] | None = None,
    owner_a: dict[str, Any] | None = None,
    owner_b: dict[str, Any] | None = None,
) -> Agency:
    """The stories' agency: Cohen's plumbing (A) and Levi's clinic (B), Michal answering for
    both, Avi owning A and Dana B; each part takes make_business's or make_user's overrides."""
    first = await make_business(session, **{"name": "אינסטלציה כהן", **(a or {})})
    second = await make_business(session, **{"name": "מרפאת לוי", **(b or {})})
    both = await make_user(
        session, "secretary", first, second, **{"name": "מיכל", **(secretary or {})}
    )
    avi = await make_user(session, "owner", first, **{"name": "אבי", **(owner_a or {})})
    dana = await make_user(session, "owner", second, **{"name": "דנה", **(owner_b or {})})
    return Agency(first, second, both, avi, dana)


CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


async def csrf_token(client: httpx.AsyncClient, path: str = "/login") -> str:
    page = await client.get(path, follow_redirects=True)
    match = CSRF_INPUT.search(page.text)
    assert match, f"no csrf_token on {path}"
    return match.group(1)


async def sign_in(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD
) -> httpx.Response:
    token = await csrf_token(client)
    return await client.post(
        "/login", data={"email": email, "password": password, "csrf_token": token}
    )


class MovableClock:
    """A clock the test sets, and moves, instead of sleeping (the app's `clock`)."""

    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def now(self) -> datetime:
        return self.moment


@contextmanager
def _listening(db: Database, record: Callable[..., None]) -> Iterator[None]:
    event.listen(db.engine.sync_engine, "before_cursor_execute", record)
    try:
        yield
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", record)


@contextmanager
def statements_sent(db: Database) -> Iterator[list[tuple[str, bool]]]:
    """Every SQL statement sent meanwhile, with whether it went as an executemany."""
    sent: list[tuple[str, bool]] = []
    with _listening(db, lambda *args: sent.append((str(args[2]), bool(args[5])))):
        yield sent


@contextmanager
def counting(db: Database) -> Iterator[list[str]]:
    """The SQL statements run meanwhile (transaction control left out), for counting queries."""
    statements: list[str] = []

    def record(*args: object) -> None:
        sql = str(args[2])
        if not sql.startswith(("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")):
            statements.append(sql)

    with _listening(db, record):
        yield statements
