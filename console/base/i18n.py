"""Hebrew first, English second: message catalogs, the current request's language, formatting.

Source strings are English; `console/base/locale/he/LC_MESSAGES/messages.po` holds the Hebrew.
Catalogs are compiled in memory at import, so there is no build step and no binary file.

Hebrew addresses a woman, a man and a group in different words ("בחרי", "בחר", "בחרו"). Each user
chooses how the interface speaks to them (`User.addressed_as`). A string's plain translation is
the neutral plural; a string that addresses the reader also has a feminine and a masculine form in
the catalog under the message context (msgctxt) "feminine" and "masculine", and `gettext` answers
with the form of the person being spoken to (`addressing`, `speaking_to`). English has one form.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

from babel.core import Locale
from babel.dates import format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LOCALES = ("he", "en")
DEFAULT_LOCALE = "he"
RTL = frozenset({"he"})
LOCALE_DIR = Path(__file__).resolve().parent / "locale"

# How the interface addresses a person; the first is the default and the plain translation.
FORMS = ("plural", "feminine", "masculine")
DEFAULT_FORM = FORMS[0]

_current: ContextVar[str] = ContextVar("mazkira_locale", default="en")
_form: ContextVar[str] = ContextVar("mazkira_addressing", default=DEFAULT_FORM)


def _load(locale: str) -> tuple[NullTranslations, frozenset[tuple[str, str]]]:
    """The translations, and which (form, message) pairs have a form of their own."""
    po = LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"
    if not po.exists():
        return NullTranslations(), frozenset()
    with po.open("rb") as handle:
        catalog = read_po(handle, locale=locale)
    forms = frozenset(
        (message.context, message.id if isinstance(message.id, str) else message.id[0])
        for message in catalog
        if message.context in FORMS and message.id and not message.fuzzy
    )
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(fp=buffer), forms


_loaded = {locale: _load(locale) for locale in LOCALES}
_translations: dict[str, NullTranslations] = {locale: pair[0] for locale, pair in _loaded.items()}
_addressed: dict[str, frozenset[tuple[str, str]]] = {
    locale: pair[1] for locale, pair in _loaded.items()
}


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


def babel_locale() -> Locale:
    """The reader's locale as babel's formatters take it: a name given to them is parsed
    again on every call, which doubled the cost of each date and number a page formats."""
    return _parsed(_current.get())


@functools.cache
def _parsed(locale: str) -> Locale:
    return Locale.parse(locale)


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


def pick_form(form: str | None) -> str:
    return form if form in FORMS else DEFAULT_FORM


def current_form() -> str:
    return _form.get()


def set_form(form: str | None) -> None:
    _form.set(pick_form(form))


@contextmanager
def addressing(form: str | None) -> Iterator[None]:
    """Speak to the reader in this form (feminine, masculine or plural) inside the block."""
    token = _form.set(pick_form(form))
    try:
        yield
    finally:
        _form.reset(token)


class Reader(Protocol):
    locale: str
    addressed_as: str


@contextmanager
def speaking_to(person: Reader) -> Iterator[None]:
    """A message for one person (an e-mail, a notice): their language and their form."""
    with using_locale(person.locale), addressing(person.addressed_as):
        yield


def gettext(message: str) -> str:
    locale, form = current_locale(), _form.get()
    if form != DEFAULT_FORM and (form, message) in _addressed[locale]:
        return _translations[locale].upgettext(form, message)
    return _translations[locale].ugettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    locale, form = current_locale(), _form.get()
    if form != DEFAULT_FORM and (form, singular) in _addressed[locale]:
        return _translations[locale].unpgettext(form, singular, plural, n)
    return _translations[locale].ungettext(singular, plural, n)


_ = gettext


# Israeli dates in either language: 7.12.26, 14:05 (English's own 12/7/26 reads as 12 July here).
ISRAELI = "d.M.yy, HH:mm"


def format_day(day: date) -> str:
    """A calendar day as Israelis write it, in both languages: 14.3.85."""
    return f"{day.day}.{day.month}.{day:%y}"


def format_local(moment: datetime, timezone: str = "Asia/Jerusalem", fmt: str = "short") -> str:
    """A UTC moment in a business's zone: day.month.year and the 24-hour clock in Hebrew and
    English alike (`fmt` another babel pattern for a part of it, such as "HH:mm:ss")."""
    pattern = ISRAELI if fmt == "short" else fmt
    return format_datetime(moment, pattern, tzinfo=ZoneInfo(timezone), locale=babel_locale())
