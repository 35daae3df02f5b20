"""Signed, expiring, single-purpose tokens with which an owner marks a handed-off task seen or
done without signing in: in a link of his notification, or as the id of a WhatsApp reply button.

A token names the task, its assignee, the action and when it expires, signed with the app's
SECRET_KEY under a salt per purpose (a link's token is no button id, and neither is a session
cookie). Expiry is checked against the caller's clock, so tests move time instead of waiting.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer

from console.base.config import Settings
from console.base.errors import ConsoleError

LINK = "mazkira.task-link"
BUTTON = "mazkira.task-button"
PURPOSES = (LINK, BUTTON)
ACTIONS = ("seen", "done")
LIFETIME = timedelta(days=7)
# WhatsApp refuses reply-button ids longer than this.
BUTTON_ID_LENGTH = 256


@dataclass(frozen=True)
class TaskAction:
    task_id: uuid.UUID
    assignee_id: uuid.UUID
    action: str
    expires_at: datetime


@dataclass(frozen=True)
class TaskLinks:
    """Signs tokens and writes the links the notifications carry."""

    secret_key: str
    public_url: str | None  # without it (PUBLIC_URL unset) notifications carry no links

    @classmethod
    def of(cls, settings: Settings) -> TaskLinks:
        return cls(settings.secret_key, settings.public_url)

    def token(
        self,
        task_id: uuid.UUID,
        assignee_id: uuid.UUID,
        action: str,
        *,
        now: datetime,
        purpose: str = LINK,
    ) -> str:
        if action not in ACTIONS or purpose not in PURPOSES:
            raise ValueError(f"unknown action {action!r} or purpose {purpose!r}")
        expires = int((now + LIFETIME).timestamp())
        payload = [action, task_id.hex, assignee_id.hex, expires]
        return str(_serializer(self.secret_key, purpose).dumps(payload))

    def url(
        self, task_id: uuid.UUID, assignee_id: uuid.UUID, action: str, *, now: datetime
    ) -> str | None:
        if not self.public_url:
            return None
        token = self.token(task_id, assignee_id, action, now=now)
        return f"{self.public_url.rstrip('/')}/ack/{token}"

    def button_id(
        self, task_id: uuid.UUID, assignee_id: uuid.UUID, action: str, *, now: datetime
    ) -> str:
        return self.token(task_id, assignee_id, action, now=now, purpose=BUTTON)


def read_token(secret_key: str, token: str, *, purpose: str, now: datetime) -> TaskAction:
    """What a token asks for. A token that is not ours, not for this purpose, damaged or
    expired is refused with a 400 (a plain ConsoleError), and nothing is changed."""
    try:
        payload: Any = _serializer(secret_key, purpose).loads(token)
    except BadSignature:
        raise ConsoleError(
            "This link is not valid. Open the task in the console instead."
        ) from None
    try:
        action, task_hex, assignee_hex, expires = payload
        found = TaskAction(
            uuid.UUID(hex=task_hex),
            uuid.UUID(hex=assignee_hex),
            action,
            datetime.fromtimestamp(int(expires), UTC),
        )
    except (TypeError, ValueError):  # signed by us, but not a task token
        raise ConsoleError(
            "This link is not valid. Open the task in the console instead."
        ) from None
    if found.action not in ACTIONS:
        raise ConsoleError("This link is not valid. Open the task in the console instead.")
    if found.expires_at <= now:
        raise ConsoleError("This link has expired. Open the task in the console instead.")
    return found


def _serializer(secret_key: str, purpose: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret_key, salt=purpose)
