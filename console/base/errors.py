"""What a service says when it refuses; routes turn each into its HTTP status and message.

A message is an English template with %(name)s placeholders, translated when it is shown, so
the catalog holds one entry per message whatever the values. The keywords of these classes are
in the extraction command (docs/i18n.md), so their messages land in the catalog.
"""

from __future__ import annotations

from typing import Any

from console.base.i18n import gettext


class ConsoleError(Exception):
    status = 400

    def __init__(self, message: str, *, field: str | None = None, **params: Any) -> None:
        self.template = message
        self.params = params
        self.field = field
        super().__init__(self.message)

    @property
    def message(self) -> str:
        """In English, for logs and the command line."""
        return self.template % self.params if self.params else self.template

    def translated(self) -> str:
        """In the current request's language."""
        text = gettext(self.template)
        return text % self.params if self.params else text


class NotFound(ConsoleError):
    """Missing, or belonging to a business the user may not see: the two look the same."""

    status = 404


class Invalid(ConsoleError):
    status = 422


class Conflict(ConsoleError):
    status = 409


class Unauthorized(ConsoleError):
    status = 401


class TooLarge(ConsoleError):
    status = 413


class UnsupportedMedia(ConsoleError):
    status = 415


class Throttled(ConsoleError):
    status = 429

    def __init__(self, message: str, *, retry_after: int, **params: Any) -> None:
        super().__init__(message, **params)
        self.retry_after = retry_after
