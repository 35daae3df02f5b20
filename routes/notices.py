"""What owners are told: their settings and tomorrow's digest (the owner for himself, the admin
for the business and each owner), a message's "seen" link (no session: the signed token is the
proof; /ack/ posts need no CSRF token), and the admin's page of failed sends with "retry"."""

from __future__ import annotations

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from console.base.errors import Invalid
from console.base.i18n import pick_locale, using_locale
from console.channels.notify import retry_failed
from console.channels.owner_notices import NoticeForm
from console.leads import call_notices
from console.people.tenancy import parse_id
from console.screens import notices_page
from models import Role
from routes.access import signed_in, user_of
from routes.forms import is_htmx, now, see_other, text
from routes.templating import render

PRIVATE = {"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}
PAGE = "portal/notices.html"


def _typed(form: FormData) -> NoticeForm:
    return NoticeForm(
        calls=text(form, "calls"),
        quiet_from=text(form, "quiet_from"),
        quiet_to=text(form, "quiet_to"),
        language=text(form, "language"),
        digest_hour=text(form, "digest_hour"),
        digest_channel=text(form, "digest_channel"),
        digest_sections=[str(v) for v in form.getlist("digest_sections")],
    )


def _base(request: Request) -> str:
    root = "/agency" if user_of(request).role == Role.ADMIN else "/portal"
    return f"{root}/businesses/{request.path_params['business_id']}/notices"


async def _context(request: Request, person: str, **context: object) -> dict[str, object]:
    typed = context.pop("typed", None)
    async with request.app.state.db.transaction(write=False) as session:
        view = await notices_page.notices_page(
            session,
            user_of(request),
            request.path_params["business_id"],
            person_id=person,
            typed=typed if isinstance(typed, NoticeForm) else None,
            now=now(request),
            public_url=request.app.state.settings.public_url,
        )
    return {"view": view, "base": _base(request), **context}


async def _page(request: Request) -> Response:
    """His settings and tomorrow's digest; the admin picks the owner (`?person=`)."""
    context = await _context(request, request.query_params.get("person", ""))
    return render(request, PAGE, context)


async def _save(request: Request) -> Response:
    """Refused, the form comes back in place as typed, the reason beside the field."""
    form = await request.form()
    typed, person = _typed(form), text(form, "person")
    try:
        async with request.app.state.db.transaction() as session:
            await notices_page.save_page(
                session,
                user_of(request),
                request.path_params["business_id"],
                typed,
                person_id=person,
                now=now(request),
            )
    except Invalid as refused:
        context = await _context(request, person, typed=typed, refused=refused)
        return render(request, PAGE, context, status=422, block="notices_form")
    if not is_htmx(request):
        return see_other(request, _base(request) + (f"?person={person}" if person else ""))
    context = await _context(request, person, saved=True)
    return render(request, PAGE, context, block="notices_form")


async def _resend(request: Request) -> Response:
    """This morning's digest again, now."""
    form = await request.form()
    person = text(form, "person")
    async with request.app.state.db.transaction() as session:
        await notices_page.resend(
            session,
            user_of(request),
            request.path_params["business_id"],
            person_id=person,
            now=now(request),
            public_url=request.app.state.settings.public_url,
        )
    context = await _context(request, person, resent=True)
    return render(request, PAGE, context, block="digest")


# The owner's own (/portal/...) and the admin's for any owner (/agency/...): one handler each.
owner_page, admin_page = signed_in(Role.OWNER)(_page), signed_in(Role.ADMIN)(_page)
owner_save, admin_save = signed_in(Role.OWNER)(_save), signed_in(Role.ADMIN)(_save)
owner_resend, admin_resend = signed_in(Role.OWNER)(_resend), signed_in(Role.ADMIN)(_resend)


async def call_page(request: Request) -> Response:
    """The message of one call, with "seen" and "call back" (GET changes nothing)."""
    async with request.app.state.db.transaction(write=False) as session:
        notice = await call_notices.notice_of_token(
            session, _secret(request), request.path_params["token"], now=now(request)
        )
    with using_locale(pick_locale(None, notice.owner.locale)):
        response = render(request, "portal/call_notice.html", {"notice": notice})
    response.headers.update(PRIVATE)
    return response


async def call_seen(request: Request) -> Response:
    """Mark it seen, then show it again (a repeat keeps the first moment)."""
    async with request.app.state.db.transaction() as session:
        notice = await call_notices.notice_of_token(
            session, _secret(request), request.path_params["token"], now=now(request)
        )
        await call_notices.mark_seen(session, notice, now=now(request))
    response = see_other(request, request.url.path)
    response.headers.update(PRIVATE)
    return response


@signed_in(Role.ADMIN)
async def failed(request: Request) -> Response:
    async with request.app.state.db.transaction(write=False) as session:
        rows = await notices_page.failed_sends(session)
    return render(request, "agency/failed_sends.html", {"rows": rows})


@signed_in(Role.ADMIN)
async def retry(request: Request) -> Response:
    """Queue a failed send again; the page says so."""
    async with request.app.state.db.transaction() as session:
        await retry_failed(
            session, parse_id(request.path_params["notification_id"]), now=now(request)
        )
    return see_other(request, "/agency/notifications?retried=1")


def _secret(request: Request) -> str:
    return str(request.app.state.settings.secret_key)
