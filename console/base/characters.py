"""Characters text must not carry: control characters, which nobody types and PostgreSQL refuses
(NUL), and the bidirectional controls, with which a name can show as another phone number."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

# C0 controls except tab, line feed and carriage return.
CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")
# The embeddings and overrides (U+202A–202E) and the isolates (U+2066–2069).
BIDI_CONTROL = re.compile("[\u202a-\u202e\u2066-\u2069]")


def has_control(text: str) -> bool:
    return CONTROL.search(text) is not None


def without_controls(text: str) -> str:
    """What a provider sent, without the controls: its message is kept, never refused."""
    return CONTROL.sub("", text)


def without_bidi_controls(text: str) -> str:
    """For plain text (SMS, WhatsApp, e-mail) and HTML: the text shows in its own order."""
    return BIDI_CONTROL.sub("", text)


def cleaned(value: Any) -> Any:
    """A parsed JSON value with every string (keys too) without controls."""
    if isinstance(value, str):
        return without_controls(value)
    if isinstance(value, list):
        return [cleaned(item) for item in value]
    if isinstance(value, dict):
        return {without_controls(str(k)): cleaned(v) for k, v in value.items()}
    return value


def first_with_control(value: Any, field: str = "body") -> str | None:
    """The name of the first field of a parsed JSON value holding a control character (a
    top-level key names its whole subtree), or None."""
    for name, text in _strings(value, field):
        if has_control(text):
            return name
    return None


def _strings(value: Any, field: str) -> Iterator[tuple[str, str]]:
    stack = [(field, value)]
    while stack:  # no recursion: a body is as deep as the parser let it be
        name, item = stack.pop()
        if isinstance(item, str):
            yield name, item
        elif isinstance(item, list):
            stack.extend((name, element) for element in reversed(item))
        elif isinstance(item, dict):
            for key, element in reversed(item.items()):
                named = str(key) if item is value else name
                yield named, str(key)
                stack.append((named, element))
