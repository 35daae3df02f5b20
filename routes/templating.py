"""One Jinja environment for pages, htmx fragments and websocket pushes, translated per request."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, pass_eval_context, select_autoescape
from jinja2.nodes import EvalContext
from jinja2_fragments.starlette import Jinja2Blocks
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response

from console.base import i18n, labels
from console.base.characters import without_bidi_controls
from console.contacts.contacts import display_phone

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def shown(value: Any) -> Any:
    """Every value a template prints, before it is escaped: text without the bidirectional
    embeddings, overrides and isolates, with which a name could show as another phone number
    (the page isolates user text with `<bdi>` and `dir="auto"` instead). Markup is the
    templates' own, but a translation's parameters reach it unescaped of them (`_("Call back
    %(name)s", name=…)`), so it is cleaned too: none of these characters is ever markup."""
    if not isinstance(value, str) or value.isascii():  # isascii is a flag: no character read
        return value
    if isinstance(value, Markup):
        return Markup(without_bidi_controls(value))  # noqa: S704 - it was markup already
    return without_bidi_controls(value)


env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    # Each template is read and compiled once per process: checking its file's modification
    # time on every render costs every page a stat() per template it includes. A developer
    # editing templates sets TEMPLATES_RELOAD (`create_app` applies it).
    auto_reload=False,
    autoescape=select_autoescape(["html", "xml"], default_for_string=True),
    extensions=["jinja2.ext.i18n"],
    trim_blocks=True,
    lstrip_blocks=True,
    finalize=shown,
)
env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]
# A message without parameters, as a template prints it, per language and form of address.
_printed: dict[tuple[str, str, str], Markup] = {}
PRINTED_AT_MOST = 20_000  # messages are the templates' literals; a bound all the same


@pass_eval_context
def translated(eval_ctx: EvalContext, message: str, /, **variables: Any) -> str:
    """What Jinja's newstyle `gettext` gives (translated, marked safe where the template escapes,
    always %-formatted so `%%` prints `%`), with one call where Jinja's `_` makes two through the
    context. A page of the console prints dozens of these (`base.html` alone some 30), most with
    no parameters: those are translated and formatted once per language and form."""
    if variables or not eval_ctx.autoescape:
        text = i18n.gettext(message)
        # the catalogue's own text, marked as Jinja's gettext marks it; parameters are escaped
        return (Markup(text) if eval_ctx.autoescape else text) % variables  # noqa: S704
    key = (i18n.current_locale(), i18n.current_form(), message)
    printed = _printed.get(key)
    if printed is None:
        printed = Markup(i18n.gettext(message)) % {}  # noqa: S704 - as above
        if len(_printed) < PRINTED_AT_MOST:
            _printed[key] = printed
    return printed


env.globals["_"] = env.globals["gettext"] = translated
env.globals["dir_of"] = i18n.direction
env.globals["label"] = labels.label
env.globals["options"] = labels.options
env.filters["local_time"] = i18n.format_local
env.filters["day"] = i18n.format_day
env.filters["waited"] = labels.waited
env.filters["time_left"] = labels.time_left
env.filters["phone"] = display_phone
env.filters["span"] = labels.duration
env.globals["duration_words"] = labels.duration_words


def page_context(request: Request) -> dict[str, Any]:
    """What every page knows: who is looking, in which language, and the CSRF token to send."""
    locale = i18n.current_locale()
    hub = getattr(request.app.state, "hub", None)
    return {
        "viewers_of": (lambda lead_id: hub.viewers(str(lead_id))) if hub else (lambda _: []),
        "rendered_at": datetime.now(UTC).isoformat(),
        # A one-time key for forms that create something: a double click creates it once.
        "request_key": uuid.uuid4().hex,
        "user": getattr(request.state, "user", None),
        "csrf_token": getattr(request.state, "csrf_token", ""),
        "locale": locale,
        "dir": i18n.direction(locale),
        "other_locale": "en" if locale == "he" else "he",
        # The console is a phone when the agency's SIP server is connected (deploy/sip).
        "phone_connected": _phone_connected(request),
    }


def _phone_connected(request: Request) -> bool:
    settings = getattr(request.app.state, "settings", None)
    return bool(settings and settings.sip_secret and settings.sip_ws_url)


templates = Jinja2Blocks(env=env, context_processors=[page_context])


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    status: int = 200,
    block: str | None = None,
) -> Response:
    """The whole page, or only `block` of it when htmx asked (the same template either way)."""
    partial = block is not None and request.headers.get("HX-Request") == "true"
    response = templates.TemplateResponse(
        request, name, context or {}, status_code=status, block_name=block if partial else None
    )
    if block is not None:
        response.headers["Vary"] = "HX-Request"
    return response
