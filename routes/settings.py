"""The user's own settings: how the interface addresses them, personal API tokens and two-factor
sign-in."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from console.agency import admin
from console.base.errors import Conflict, ConsoleError, Invalid, Throttled
from console.base.i18n import addressing
from console.people import api_tokens, two_factor
from routes.access import actor, signed_in, user_of
from routes.forms import is_htmx, now, see_other, text, wants_json
from routes.templating import render

TOKENS_PAGE = "/settings/tokens"


def _tokens_page(request: Request, context: dict[str, Any], status: int = 200) -> Response:
    response = render(request, "settings/tokens.html", context, status=status, block="tokens")
    response.headers["Cache-Control"] = "no-store"  # it may hold a new secret
    return response


@signed_in()
async def tokens(request: Request) -> Response:
    async with request.app.state.db.transaction(write=False) as session:
        found = await api_tokens.tokens_of(session, user_of(request))
    return _tokens_page(request, {"tokens": found})


@signed_in()
async def create_token(request: Request) -> Response:
    """Make a token and show its secret, this once."""
    form = await request.form()
    user = user_of(request)
    try:
        async with request.app.state.db.transaction() as session:
            made = await api_tokens.create_token(
                session,
                user,
                text(form, "name"),
                now=now(request),
                address=request.state.client_address,
            )
            found = await api_tokens.tokens_of(session, user)
    except Invalid as refused:  # the list again, the name as typed, the reason beside it
        if wants_json(request):
            raise
        async with request.app.state.db.transaction(write=False) as session:
            found = await api_tokens.tokens_of(session, user)
        context = {"tokens": found, "refused": refused, "typed_name": text(form, "name")}
        return _tokens_page(request, context, status=422)
    context = {"tokens": found, "new_secret": made.secret, "new_name": made.token.name}
    return _tokens_page(request, context)


@signed_in()
async def revoke_token(request: Request) -> Response:
    user = user_of(request)
    async with request.app.state.db.transaction() as session:
        await api_tokens.revoke_token(
            session,
            user,
            request.path_params["token_id"],
            now=now(request),
            address=request.state.client_address,
        )
        found = await api_tokens.tokens_of(session, user)
    if is_htmx(request):
        return _tokens_page(request, {"tokens": found})
    return see_other(request, TOKENS_PAGE)


# --- two-factor sign-in ------------------------------------------------------------------------


def _two_factor_page(request: Request, context: dict[str, Any], status: int = 200) -> Response:
    response = render(request, "settings/two_factor.html", context, status=status)
    response.headers["Cache-Control"] = "no-store"  # it may hold her secret or recovery codes
    return response


@signed_in()
async def two_factor_page(request: Request) -> Response:
    async with request.app.state.db.transaction(write=False) as session:
        status = await two_factor.status_of(session, user_of(request))
    return _two_factor_page(request, {"status": status})


@signed_in()
async def start_two_factor(request: Request) -> Response:
    """A new secret and its QR code, to confirm with the app's first code."""
    user = user_of(request)
    async with request.app.state.db.transaction() as session:
        enrolment = await two_factor.begin_enrolment(session, user, now=now(request))
        status = await two_factor.status_of(session, user)
    return _two_factor_page(request, {"status": status, "enrolment": enrolment})


@signed_in()
async def confirm_two_factor(request: Request) -> Response:
    """On with the app's first code (her recovery codes shown once); a wrong one shows the same
    QR code again with why."""
    form = await request.form()
    settings, user = request.app.state.settings, user_of(request)
    async with request.app.state.db.transaction() as session:
        codes = await two_factor.confirm_enrolment(
            session, settings, actor(request), text(form, "code")
        )
        enrolment = await two_factor.pending_enrolment(session, user)
        status = await two_factor.status_of(session, user)
    if codes is None:
        wrong = Invalid("That code is not right. Try the newest one.", field="code")
        context = {"status": status, "enrolment": enrolment, "error": wrong.translated()}
        return _two_factor_page(request, context, status=wrong.status)
    return _two_factor_page(request, {"status": status, "codes": codes})


@signed_in()
async def disable_two_factor(request: Request) -> Response:
    """Off, proven with a code; refused in place (why, beside the field) otherwise."""
    form = await request.form()
    try:
        async with request.app.state.db.transaction() as session:
            off = await two_factor.disable(
                session, request.app.state.settings, actor(request), text(form, "code")
            )
    except (Invalid, Conflict, Throttled) as refused:
        return await _refused_turning_off(request, refused)
    if not off:
        wrong = Invalid("That code is not right. Try the newest one.", field="code")
        return await _refused_turning_off(request, wrong)
    return see_other(request, "/settings/two-factor")


async def _refused_turning_off(request: Request, refused: ConsoleError) -> Response:
    async with request.app.state.db.transaction(write=False) as session:
        status = await two_factor.status_of(session, user_of(request))
    context = {"status": status, "error": refused.translated()}
    response = _two_factor_page(request, context, status=refused.status)
    if isinstance(refused, Throttled):
        response.headers["Retry-After"] = str(refused.retry_after)
    return response


# --- how the Hebrew interface addresses her or him --------------------------------------------


@signed_in()
async def addressing_page(request: Request) -> Response:
    return render(request, "settings/addressing.html", {"chosen": user_of(request).addressed_as})


@signed_in()
async def set_addressing(request: Request) -> Response:
    form = await request.form()
    chosen = text(form, "addressed_as")
    try:
        async with request.app.state.db.transaction() as session:
            user = await admin.set_addressed_as(
                session, actor(request), user_of(request).id, chosen
            )
    except Invalid as refused:  # only a tampered form: the choices again, the reason beside them
        context = {"chosen": chosen, "refused": refused}
        return render(request, "settings/addressing.html", context, status=422)
    with addressing(user.addressed_as):  # the page that says so already speaks the new way
        return render(request, "settings/addressing.html", {"chosen": chosen, "saved": True})
