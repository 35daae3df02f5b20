"""Keep the Hebrew catalog in step with the code: `python -m console.base.catalog`.

Extracts every translatable string (templates' {% trans %} and _(), gettext() calls, and the
messages of the console's errors), merges them into console/base/locale/he/LC_MESSAGES/messages.po,
and lists what still has no Hebrew. A test fails while anything is untranslated.

A string that addresses the reader ("Choose…", "Enter…", "your…") has, beside its plain Hebrew (the
neutral plural), a feminine and a masculine form under msgctxt "feminine" and "masculine"
(console/base/i18n.py). The code has no marker for them: the forms are written in the catalog, kept
while their English is still in the code, and a string with one form must have both.
"""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.catalog import Catalog, Message
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po, write_po

from console.base.i18n import DEFAULT_FORM, FORMS, LOCALE_DIR

ROOT = Path(__file__).resolve().parents[2]
ERRORS = (
    "ConsoleError",
    "NotFound",
    "Invalid",
    "Conflict",
    "Unauthorized",
    "Throttled",
    "UnsupportedMedia",
    "TooLarge",
    "HeldByAnother",  # console/leads/leads.py: a Conflict that names the lead's holder
)
KEYWORDS = {**DEFAULT_KEYWORDS, **{name: None for name in ERRORS}}
METHODS = [
    ("console/**.py", "python"),
    ("routes/**.py", "python"),
    ("templates/**.html", "jinja2"),
]
OPTIONS = {"templates/**.html": {"extensions": "jinja2.ext.i18n", "trimmed": "false"}}


def extract() -> Catalog:
    template = Catalog(project="Mazkira")
    for filename, lineno, message, _comments, context in extract_from_dir(
        ROOT, METHODS, OPTIONS, keywords=KEYWORDS, strip_comment_tags=True
    ):
        if message:
            template.add(message, None, [(filename, lineno)], context=context)
    return template


def hebrew_path() -> Path:
    return LOCALE_DIR / "he" / "LC_MESSAGES" / "messages.po"


def load_hebrew() -> Catalog:
    path = hebrew_path()
    if not path.exists():
        return Catalog(locale="he", project="Mazkira")
    with path.open("rb") as handle:
        return read_po(handle, locale="he")


GENDERED = tuple(form for form in FORMS if form != DEFAULT_FORM)


def untranslated(catalog: Catalog) -> list[str]:
    """The English of every message without Hebrew, or with one gendered form but not the other
    (listed as "feminine: Choose…")."""
    missing = []
    for message in catalog:
        if not message.id:
            continue
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if message.fuzzy or not all(strings):
            missing.append(message.id if isinstance(message.id, str) else message.id[0])
        if message.context in GENDERED:
            for form in GENDERED:
                if catalog.get(message.id, context=form) is None:
                    missing.append(f"{form}: {message.id}")
    return list(dict.fromkeys(missing))


def addressed_forms(catalog: Catalog) -> list[Message]:
    return [message for message in catalog if message.id and message.context in GENDERED]


def main() -> int:
    hebrew = load_hebrew()
    forms = addressed_forms(hebrew)
    template = extract()
    hebrew.update(template, no_fuzzy_matching=True)
    # The gendered forms are the catalog's own: keep them while their English is in the code.
    for message in forms:
        msgid = message.id if isinstance(message.id, str) else message.id[0]
        if message.context and template.get(msgid) is not None:
            hebrew.add(message.id, message.string, context=message.context, flags=message.flags)
            hebrew.obsolete.pop((msgid, message.context), None)
    path = hebrew_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        write_po(handle, hebrew, omit_header=False, no_location=True, width=100)
    missing = untranslated(hebrew)
    for message_id in missing:
        print(f"untranslated: {message_id}")
    print(f"{len(hebrew)} messages, {len(missing)} without Hebrew, in {path.relative_to(ROOT)}")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
