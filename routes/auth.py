"""Sign in, sign out, and the language switch."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from console.base import i18n
from console.base.errors import Throttled
from console.people import auth
from console.people.accounts import set_user_locale
from console.people.audit import record_sign_in
from models import Role, User
from routes.access import current_user, safe_next
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
    email, password = str(form.get("email") or ""), str(form.get("password") or "")
    context = {"email": email, "next": str(form.get("next") or "")}
    if not email.strip() or not password:
        context["error"] = i18n.gettext("Enter your e-mail and password.")
        return render(request, "login/login.html", context, status=422)
    settings, now = request.app.state.settings, datetime.now(UTC)
    try:
        async with request.app.state.db.transaction() as session:
            user = await auth.authenticate(
                session,
                settings,
                email=email,
                password=password,
                address=request.state.client_address,
                now=now,
            )
            await record_sign_in(
                session, user, email=email, address=request.state.client_address, now=now
            )
            started = None
            if user is not None:
                started = await auth.start_session(
                    session,
                    settings,
                    user,
                    now=now,
                    address=request.state.client_address,
                    user_agent=request.headers.get("user-agent", ""),
                    replaces=request.state.session_id,
                )
    except Throttled as refused:
        context["error"] = refused.translated()
        response = render(request, "login/login.html", context, status=429)
        response.headers["Retry-After"] = str(refused.retry_after)
        return response
    if user is None or started is None:
        context["error"] = i18n.gettext("Wrong e-mail or password.")
        return render(request, "login/login.html", context, status=401)
    response = RedirectResponse(safe_next(context["next"], home_of(user)), status_code=303)
    response.headers.append("Set-Cookie", request.app.state.cookies.session(started.token))
    return response


async def logout(request: Request) -> Response:
    if request.state.session_id:
        async with request.app.state.db.transaction() as session:
            await auth.end_session(session, request.state.session_id, now=datetime.now(UTC))
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
