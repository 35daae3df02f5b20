"""Small helpers for handlers: the clock, form fields as text, where to go after a POST."""

from __future__ import annotations

from datetime import datetime

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from console.base import i18n


def speak_the_callers_language(request: Request) -> None:
    """English for machines, unless Accept-Language asks for Hebrew (a business's web form
    sends its own language, so its refusals read as the form does)."""
    asked = request.headers.get("accept-language", "").split(",")[0].split(";")[0].strip()
    i18n.set_locale(i18n.pick_locale(asked, "en"))


def now(request: Request) -> datetime:
    return request.app.state.clock.now()  # type: ignore[no-any-return]


def text(form: FormData, name: str, default: str = "") -> str:
    value = form.get(name)
    return value if isinstance(value, str) else default


def prefixed(form: FormData, prefix: str) -> dict[str, str]:
    """Fields named `prefix[key]`, as {key: value}: the answers to a script's questions."""
    found = {}
    for name, value in form.multi_items():
        if name.startswith(prefix + "[") and name.endswith("]") and isinstance(value, str):
            found[name[len(prefix) + 1 : -1]] = value
    return found


def is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"


def wants_json(request: Request) -> bool:
    """A machine asking for JSON gets a refusal as JSON (routes/errors.py), not a form again."""
    return "application/json" in request.headers.get("accept", "")


def see_other(request: Request, url: str) -> Response:
    """After a POST: a redirect for a plain form, HX-Location for htmx (which follows it)."""
    if is_htmx(request):
        return Response(status_code=204, headers={"HX-Location": url})
    return RedirectResponse(url, status_code=303)
