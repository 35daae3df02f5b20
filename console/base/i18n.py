"""Hebrew first, English second: message catalogs, the current request's language, formatting.

Source strings are English; `console/base/locale/he/LC_MESSAGES/messages.po` holds the Hebrew.
Catalogs are compiled in memory at import, so there is no build step and no binary file.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LOCALES = ("he", "en")
DEFAULT_LOCALE = "he"
RTL = frozenset({"he"})
LOCALE_DIR = Path(__file__).resolve().parent / "locale"

_current: ContextVar[str] = ContextVar("mazkira_locale", default="en")


def _load(locale: str) -> NullTranslations:
    po = LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"
    if not po.exists():
        return NullTranslations()
    with po.open("rb") as handle:
        catalog = read_po(handle, locale=locale)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(fp=buffer)


_translations: dict[str, NullTranslations] = {locale: _load(locale) for locale in LOCALES}


def pick_locale(*candidates: str | None) -> str:
    """The first supported language among the candidates, else the default."""
    for candidate in candidates:
        if candidate:
            short = candidate.split("-")[0].split("_")[0].lower()
            if short in LOCALES:
                return short
    return DEFAULT_LOCALE


def current_locale() -> str:
    return _current.get()


def set_locale(locale: str) -> None:
    _current.set(pick_locale(locale))


@contextmanager
def using_locale(locale: str) -> Iterator[None]:
    token = _current.set(pick_locale(locale))
    try:
        yield
    finally:
        _current.reset(token)


def direction(locale: str | None = None) -> str:
    return "rtl" if (locale or current_locale()) in RTL else "ltr"


def gettext(message: str) -> str:
    return _translations[current_locale()].ugettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return _translations[current_locale()].ungettext(singular, plural, n)


_ = gettext


# Israeli dates in either language: 7.12.26, 14:05 (English's own 12/7/26 reads as 12 July here).
ISRAELI = "d.M.yy, HH:mm"


def format_local(moment: datetime, timezone: str = "Asia/Jerusalem", fmt: str = "short") -> str:
    """A UTC moment in a business's zone: day.month.year and the 24-hour clock in Hebrew and
    English alike (`fmt` another babel pattern for a part of it, such as "HH:mm:ss")."""
    pattern = ISRAELI if fmt == "short" else fmt
    return format_datetime(moment, pattern, tzinfo=ZoneInfo(timezone), locale=current_locale())
