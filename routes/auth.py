"""Sign in, sign out, and the language switch."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from console.base import i18n
from console.base.errors import ConsoleError, Invalid, Throttled, Unauthorized
from console.channels.push import forget_sign_in
from console.people import auth
from console.people.accounts import set_user_locale
from models import Role, User
from routes.access import current_user, safe_next
from routes.forms import now, text
from routes.middleware import SESSION_COOKIE
from routes.templating import render

HOME = {Role.SECRETARY: "/inbox", Role.OWNER: "/portal", Role.ADMIN: "/agency"}


def home_of(user: User) -> str:
    return HOME[Role(user.role)]


async def home(request: Request) -> Response:
    """Everyone starts at their own home; strangers at the sign-in page."""
    user = current_user(request)
    return RedirectResponse(home_of(user) if user else "/login", status_code=303)


async def login_form(request: Request) -> Response:
    user = current_user(request)
    if user is not None:
        return RedirectResponse(home_of(user), status_code=303)
    return render(request, "login/login.html", {"next": request.query_params.get("next", "")})


async def login(request: Request) -> Response:
    form = await request.form()
    context = {"email": text(form, "email"), "next": text(form, "next")}
    try:
        async with request.app.state.db.transaction() as session:
            signed = await auth.sign_in(
                session,
                request.app.state.settings,
                email=context["email"],
                password=text(form, "password"),
                client=_client(request),
                now=now(request),
            )
    except (Invalid, Throttled) as refused:
        return _refused(request, context, refused)
    if signed is None:
        return _refused(request, context, Unauthorized("Wrong e-mail or password."))
    return _signed_or_second_step(request, signed, context["next"])


async def sign_in_with_password(request: Request, email: str, password: str) -> Response:
    """Sign in someone who has just set his password (routes/admin.py): his home, or the second
    step when the agency requires one of him."""
    try:
        async with request.app.state.db.transaction() as session:
            signed = await auth.sign_in(
                session,
                request.app.state.settings,
                email=email,
                password=password,
                client=_client(request),
                now=now(request),
            )
    except (Invalid, Throttled):  # his address is throttled: he signs in by hand, later
        signed = None
    if signed is None:
        return RedirectResponse("/login", status_code=303)
    return _signed_or_second_step(request, signed, "")


async def login_code(request: Request) -> Response:
    """The second step: the code from her app (or a recovery code), or her app's first code."""
    form = await request.form()
    context = {"email": "", "next": text(form, "next")}
    try:
        async with request.app.state.db.transaction() as session:
            signed = await auth.sign_in_with_code(
                session,
                request.app.state.settings,
                token=text(form, "token"),
                code=text(form, "code"),
                client=_client(request),
                now=now(request),
            )
    except Invalid as expired:
        return _refused(request, context, expired)
    return _signed_or_second_step(request, signed, context["next"])


def _signed_or_second_step(
    request: Request, signed: auth.SignedIn | auth.SecondStep, next_url: str
) -> Response:
    """Home (or where she was going) with her session; her recovery codes first when she has
    just enrolled; or the page asking for a code (or setting up her app)."""
    if isinstance(signed, auth.SecondStep):
        return _second_step(request, signed, next_url)
    home_url = safe_next(next_url, home_of(signed.user))
    if signed.recovery_codes:
        context = {"codes": signed.recovery_codes, "continue_to": home_url}
        response = render(request, "login/recovery_codes.html", context)
        response.headers["Cache-Control"] = "no-store"
    else:
        response = RedirectResponse(home_url, status_code=303)
    response.headers.append("Set-Cookie", request.app.state.cookies.session(signed.started.token))
    return response


def _second_step(request: Request, step: auth.SecondStep, next_url: str) -> Response:
    refused = step.refused
    context = {
        "token": step.token,
        "next": next_url,
        "enrolment": step.enrolment,
        "error": refused.translated() if refused else "",
    }
    response = render(
        request, "login/second_step.html", context, status=refused.status if refused else 200
    )
    response.headers["Cache-Control"] = "no-store"  # it may hold her new secret
    if isinstance(refused, Throttled):
        response.headers["Retry-After"] = str(refused.retry_after)
    return response


def _client(request: Request) -> auth.Client:
    """The address, the browser, and the session before sign-in (which the new one replaces)."""
    user_agent = request.headers.get("user-agent", "")
    return auth.Client(request.state.client_address, user_agent, request.state.session_id)


def _refused(request: Request, context: dict[str, str], refused: ConsoleError) -> Response:
    """The sign-in page again, saying why: 422 blank, 401 wrong, 429 too many (with Retry-After)."""
    context = {**context, "error": refused.translated()}
    response = render(request, "login/login.html", context, status=refused.status)
    if isinstance(refused, Throttled):
        response.headers["Retry-After"] = str(refused.retry_after)
    return response


async def logout(request: Request) -> Response:
    if request.state.session_id:
        async with request.app.state.db.transaction() as session:
            await auth.end_session(session, request.state.session_id, now=now(request))
            await forget_sign_in(session, request.state.session_id)
        await request.app.state.hub.end_sessions(session_id=request.state.session_id)
    response = RedirectResponse("/login", status_code=303)
    response.headers.append("Set-Cookie", request.app.state.cookies.cleared(SESSION_COOKIE))
    return response


async def switch_locale(request: Request) -> Response:
    """Remember the chosen language in a cookie and, when signed in, on the user."""
    form = await request.form()
    locale = i18n.pick_locale(str(form.get("locale") or ""))
    user = current_user(request)
    if user is not None:
        async with request.app.state.db.transaction() as session:
            await set_user_locale(session, user.id, locale)
    response = RedirectResponse(safe_next(str(form.get("next") or ""), "/"), status_code=303)
    response.headers.append("Set-Cookie", request.app.state.cookies.locale(locale))
    return response
