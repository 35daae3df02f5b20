"""Keep the Hebrew catalog in step with the code: `python -m console.base.catalog`.

Extracts every translatable string (templates' {% trans %} and _(), gettext() calls, and the
messages of the console's errors), merges them into console/base/locale/he/LC_MESSAGES/messages.po,
and lists what still has no Hebrew. A test fails while anything is untranslated.
"""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po, write_po

from console.base.i18n import LOCALE_DIR

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


def untranslated(catalog: Catalog) -> list[str]:
    missing = []
    for message in catalog:
        if not message.id:
            continue
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if message.fuzzy or not all(strings):
            missing.append(message.id if isinstance(message.id, str) else message.id[0])
    return missing


def main() -> int:
    hebrew = load_hebrew()
    hebrew.update(extract(), no_fuzzy_matching=True)
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
