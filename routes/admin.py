"""The agency's administration (admins only; anyone else is told 'not found'): businesses,
people, assignments and the audit log; and the public page where an invitee sets a password."""

from __future__ import annotations

from dataclasses import fields

from starlette.requests import Request
from starlette.responses import Response

from console.agency import admin, business_people
from console.agency.business_hours import DEFAULT_TIMEZONE
from console.agency.business_people import MEMBER_ROLES
from console.base.errors import Conflict, Invalid
from console.base.i18n import LOCALES
from console.leads import outcomes
from console.people import two_factor
from console.people.audit import AuditFilters
from console.screens import audit_page
from console.voice import call_settings, overflow, recordings
from console.voice.call_settings import CallSettingsForm
from console.voice.overflow import MOMENTS, OverflowForm
from models import Role, User
from models.leads import OUTCOMES
from routes.access import actor, signed_in
from routes.auth import sign_in_with_password
from routes.forms import is_htmx, now, see_other, text, wants_json
from routes.templating import render

# The set-password link must not leak through Referer, nor stay in a shared cache.
PRIVATE = {"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}
ROLES = [role.value for role in Role]


def link_url(request: Request, token: str) -> str:
    base = request.app.state.settings.public_url or str(request.base_url).rstrip("/")
    return f"{base}/invite/{token}"


def secret(request: Request) -> str:
    return str(request.app.state.settings.secret_key)


# --- businesses -------------------------------------------------------------------------------


@signed_in(Role.ADMIN)
async def new_business(request: Request) -> Response:
    return render(request, "agency/business_new.html", {"locales": LOCALES})


@signed_in(Role.ADMIN)
async def create_business(request: Request) -> Response:
    form = await request.form()
    typed = {name: text(form, name) for name in ("slug", "name", "timezone", "locale")}
    try:
        async with request.app.state.db.transaction() as session:
            business = await admin.create_business(session, actor(request), **typed)
    except (Invalid, Conflict) as refused:
        if wants_json(request):
            raise
        context = {"locales": LOCALES, "refused": refused, "typed": typed}
        return render(
            request,
            "agency/business_new.html",
            context,
            status=refused.status,
            block="new_business_form",
        )
    return see_other(request, f"/agency/businesses/{business.id}")


@signed_in(Role.ADMIN)
async def business(request: Request) -> Response:
    """A business's settings and its secretaries (and who else could serve it)."""
    return render(request, "agency/business.html", await business_page(request))


async def business_page(
    request: Request, calls: CallSettingsForm | None = None, **context: object
) -> dict[str, object]:
    async with request.app.state.db.transaction(write=False) as session:
        found = await admin.get_business(session, request.path_params["business_id"])
        assigned = await admin.assignments_of(session, found)
        people = await admin.users_page(session)
        calls = calls or await call_settings.call_settings(session, found.id)
        rules = context.pop("rules", None) or await overflow.overflow_form(session, found.id)
        overflow_to = await overflow.other_businesses(session, found)
        members = await business_people.people_of(session, found)
        member_candidates = await business_people.candidates(session, found)
        recording = await recordings.settings_of(session, found.id)
    taken = {a.user.id for a in assigned}
    free = [r.user for r in people if r.user.role == Role.SECRETARY and r.user.id not in taken]
    return {
        "rules": rules,
        "recording": recording,
        "recordings_kept": request.app.state.recordings is not None,
        "overflow_to": overflow_to,
        "business": found,
        "assigned": assigned,
        "free": free,
        "locales": LOCALES,
        "calls": calls,
        "outcome_stages": outcomes.outcome_stages(found),
        "outcome_targets": outcomes.TARGET_STAGES,
        "members": members,
        "member_candidates": member_candidates,
        "member_roles": MEMBER_ROLES,
        **context,
    }


@signed_in(Role.ADMIN)
async def save_call_settings(request: Request) -> Response:
    """Ring, wait and wrap-up seconds: the form comes back in place (htmx), as typed and with
    the reason beside the field when refused."""
    form = await request.form()
    typed = CallSettingsForm(*(text(form, name) for name in call_settings.BOUNDS))
    try:
        async with request.app.state.db.transaction() as session:
            found = await admin.get_business(session, request.path_params["business_id"])
            typed = await call_settings.save_call_settings(session, actor(request), found, typed)
    except Invalid as refused:
        context = await business_page(request, calls=typed, calls_error=refused)
        return render(request, "agency/business.html", context, status=422, block="call_settings")
    if not is_htmx(request):
        return see_other(request, f"/agency/businesses/{found.id}#calls")
    context = await business_page(request, calls=typed, calls_saved=True)
    return render(request, "agency/business.html", context, block="call_settings")


@signed_in(Role.ADMIN)
async def save_outcomes(request: Request) -> Response:
    """Which stage each call outcome moves a lead to: the form comes back in place (htmx)."""
    form = await request.form()
    typed = {name: text(form, name) for name in OUTCOMES}
    try:
        async with request.app.state.db.transaction() as session:
            found = await admin.get_business(session, request.path_params["business_id"])
            await outcomes.save_outcome_stages(session, actor(request), found, typed)
    except Invalid as refused:
        context = await business_page(request, outcomes_typed=typed, outcomes_error=refused)
        return render(request, "agency/business.html", context, status=422, block="outcomes")
    if not is_htmx(request):
        return see_other(request, f"/agency/businesses/{found.id}#outcomes")
    context = await business_page(request, outcomes_saved=True)
    return render(request, "agency/business.html", context, block="outcomes")


@signed_in(Role.ADMIN)
async def save_overflow(request: Request) -> Response:
    """Where a call goes when nobody takes it: the form comes back in place (htmx), as typed
    and with the reason beside the field when refused."""
    form = await request.form()
    typed = OverflowForm(*(text(form, name) for name in (*MOMENTS, "other_business_id")))
    try:
        async with request.app.state.db.transaction() as session:
            found = await admin.get_business(session, request.path_params["business_id"])
            typed = await overflow.save_overflow(session, actor(request), found, typed)
    except Invalid as refused:
        context = await business_page(request, rules=typed, overflow_error=refused)
        return render(request, "agency/business.html", context, status=422, block="overflow")
    if not is_htmx(request):
        return see_other(request, f"/agency/businesses/{found.id}#overflow")
    context = await business_page(request, rules=typed, overflow_saved=True)
    return render(request, "agency/business.html", context, block="overflow")


@signed_in(Role.ADMIN)
async def update_business(request: Request) -> Response:
    """The business's own settings: refused, the form comes back in place (htmx) as typed,
    with the reason beside the field."""
    form = await request.form()
    typed = {name: text(form, name) for name in BUSINESS_FIELDS if name in form}
    try:
        async with request.app.state.db.transaction() as session:
            found = await admin.get_business(session, request.path_params["business_id"])
            await admin.update_business(
                session,
                actor(request),
                found,
                name=typed.get("name", ""),
                timezone=typed.get("timezone", ""),
                locale=typed.get("locale", ""),
                retention_days=typed.get("retention_days"),
                repeat_window_days=typed.get("repeat_window_days"),
            )
    except Invalid as refused:
        context = await business_page(request, typed=typed, business_error=refused)
        return render(request, "agency/business.html", context, status=422, block="business_form")
    if not is_htmx(request):
        return see_other(request, f"/agency/businesses/{found.id}")
    context = await business_page(request, business_saved=True)
    return render(request, "agency/business.html", context, block="business_form")


BUSINESS_FIELDS = ("name", "timezone", "locale", "retention_days", "repeat_window_days")


@signed_in(Role.ADMIN)
async def set_business_active(request: Request) -> Response:
    form = await request.form()
    async with request.app.state.db.transaction() as session:
        found = await admin.get_business(session, request.path_params["business_id"])
        await admin.set_business_active(
            session, actor(request), found, active=text(form, "active") == "1"
        )
    return see_other(request, f"/agency/businesses/{found.id}")


@signed_in(Role.ADMIN)
async def assign(request: Request) -> Response:
    """Assign a secretary, or change whether she is the business's backup."""
    form = await request.form()
    typed = {"user_id": text(form, "user_id"), "backup": text(form, "backup")}
    try:
        async with request.app.state.db.transaction() as session:
            found = await admin.get_business(session, request.path_params["business_id"])
            person = await admin.get_user(session, typed["user_id"])
            backup = typed["backup"] == "1"
            await admin.assign(session, actor(request), found, person, backup=backup)
    except Invalid as refused:  # the page again, her choice kept, the reason beside it
        if wants_json(request):
            raise
        context = await business_page(request, assign_refused=refused, assign_typed=typed)
        return render(request, "agency/business.html", context, status=refused.status)
    return see_other(request, f"/agency/businesses/{found.id}#secretaries")


@signed_in(Role.ADMIN)
async def unassign(request: Request) -> Response:
    async with request.app.state.db.transaction() as session:
        found = await admin.get_business(session, request.path_params["business_id"])
        person = await admin.get_user(session, request.path_params["user_id"])
        await admin.unassign(session, actor(request), found, person)
    return see_other(request, f"/agency/businesses/{found.id}#secretaries")


@signed_in(Role.ADMIN)
async def link_person(request: Request) -> Response:
    """Link one of the owner role to the business as its owner, a manager or staff (or give
    him another role there); refused, the page again with the choice kept and why."""
    form = await request.form()
    typed = {"user_id": text(form, "user_id"), "member_role": text(form, "member_role")}
    try:
        async with request.app.state.db.transaction() as session:
            found = await admin.get_business(session, request.path_params["business_id"])
            await business_people.link_person(session, actor(request), found, **typed)
    except Invalid as refused:
        if wants_json(request):
            raise
        context = await business_page(request, people_refused=refused, people_typed=typed)
        return render(request, "agency/business.html", context, status=refused.status)
    return see_other(request, f"/agency/businesses/{found.id}#people")


@signed_in(Role.ADMIN)
async def unlink_person(request: Request) -> Response:
    async with request.app.state.db.transaction() as session:
        found = await admin.get_business(session, request.path_params["business_id"])
        await business_people.unlink_person(
            session, actor(request), found, request.path_params["user_id"]
        )
    return see_other(request, f"/agency/businesses/{found.id}#people")


# --- people -----------------------------------------------------------------------------------


async def _people(
    request: Request, *, status: int = 200, block: str | None = None, **extra: object
) -> Response:
    async with request.app.state.db.transaction(write=False) as session:
        rows = await admin.users_page(session)
        required = await two_factor.required_by_agency(session)
        businesses = await admin.businesses(session)
    context = {
        "rows": rows,
        "roles": ROLES,
        "locales": LOCALES,
        "two_factor_required": required,
        "businesses": businesses,
        "member_roles": MEMBER_ROLES,
        "mail_configured": bool(request.app.state.settings.smtp_url),
    }
    context.update(extra)
    response = render(request, "agency/users.html", context, status=status, block=block)
    response.headers.update(PRIVATE)
    return response


@signed_in(Role.ADMIN)
async def users(request: Request) -> Response:
    return await _people(request)


INVITE_FIELDS = ("email", "name", "role", "locale", "business_id", "member_role")


@signed_in(Role.ADMIN)
async def invite(request: Request) -> Response:
    """Create the user (linked to a business when one is chosen), e-mail the set-password link
    when mail is configured, and show it to the admin either way."""
    form = await request.form()
    typed = {name: text(form, name) for name in INVITE_FIELDS}
    try:
        async with request.app.state.db.transaction() as session:
            person = await admin.invite_user(session, actor(request), **typed)
    except (Invalid, Conflict) as refused:
        if wants_json(request):
            raise
        return await _people(
            request, refused=refused, typed=typed, status=refused.status, block="invite_form"
        )
    response = await _handed_link(request, person, invited=True)
    if is_htmx(request):  # the invited person's link is above the form: the whole page again
        response.headers.update({"HX-Retarget": "#main", "HX-Reswap": "outerHTML"})
        response.headers["HX-Reselect"] = "#main"
    return response


async def _handed_link(request: Request, person: User, *, invited: bool) -> Response:
    """The people page with the person's set-password link, e-mailed to him when mail is
    configured."""
    link = link_url(request, admin.password_link_token(secret(request), person))
    smtp_url = request.app.state.settings.smtp_url
    mailed = await admin.mail_password_link(smtp_url, person, link, invited=invited)
    return await _people(request, link=link, link_for=person, mailed=mailed)


@signed_in(Role.ADMIN)
async def change_role(request: Request) -> Response:
    form = await request.form()
    try:
        async with request.app.state.db.transaction() as session:
            person = await admin.get_user(session, request.path_params["user_id"])
            await admin.change_role(session, actor(request), person, text(form, "role"))
    except Invalid as refused:
        return await _refused_on_row(request, refused)
    await request.app.state.hub.end_sessions(user_id=str(person.id))
    return see_other(request, "/agency/users")


@signed_in(Role.ADMIN)
async def set_addressed_as(request: Request) -> Response:
    """How the Hebrew interface speaks to this person, set for them."""
    form = await request.form()
    async with request.app.state.db.transaction() as session:
        await admin.set_addressed_as(
            session, actor(request), request.path_params["user_id"], text(form, "addressed_as")
        )
    return see_other(request, "/agency/users")


@signed_in(Role.ADMIN)
async def set_user_active(request: Request) -> Response:
    form = await request.form()
    active = text(form, "active") == "1"
    try:
        async with request.app.state.db.transaction() as session:
            person = await admin.get_user(session, request.path_params["user_id"])
            await admin.set_user_active(session, actor(request), person, active=active)
    except Invalid as refused:
        return await _refused_on_row(request, refused)
    if not active:
        await request.app.state.hub.end_sessions(user_id=str(person.id))
    return see_other(request, "/agency/users")


async def _refused_on_row(request: Request, refused: Invalid) -> Response:
    """The people page again, the reason in the row of the person it was about (422)."""
    if wants_json(request):
        raise refused
    row = {"row_refused": refused, "refused_user": request.path_params["user_id"]}
    return await _people(request, status=refused.status, **row)


@signed_in(Role.ADMIN)
async def reset_password(request: Request) -> Response:
    async with request.app.state.db.transaction() as session:
        person = await admin.get_user(session, request.path_params["user_id"])
        await admin.reset_password(session, actor(request), person)
    await request.app.state.hub.end_sessions(user_id=str(person.id))
    return await _handed_link(request, person, invited=False)


@signed_in(Role.ADMIN)
async def end_sessions(request: Request) -> Response:
    async with request.app.state.db.transaction() as session:
        person = await admin.get_user(session, request.path_params["user_id"])
        await admin.end_sessions(session, actor(request), person)
    await request.app.state.hub.end_sessions(user_id=str(person.id))
    return see_other(request, "/agency/users")


@signed_in(Role.ADMIN)
async def reset_two_factor(request: Request) -> Response:
    """Two-factor sign-in off for someone who lost her phone and her recovery codes."""
    async with request.app.state.db.transaction() as session:
        person = await admin.get_user(session, request.path_params["user_id"])
        await two_factor.reset_for(session, actor(request), person)
    return see_other(request, "/agency/users")


@signed_in(Role.ADMIN)
async def require_two_factor(request: Request) -> Response:
    """The agency's rule: admins and secretaries sign in with a second factor, or need not."""
    form = await request.form()
    async with request.app.state.db.transaction() as session:
        await two_factor.set_required(session, actor(request), text(form, "required") == "1")
    return see_other(request, "/agency/users")


# --- the audit log ----------------------------------------------------------------------------


def _audit_filters(request: Request) -> AuditFilters:
    params = request.query_params
    return AuditFilters(**{f.name: params.get(f.name, "") for f in fields(AuditFilters)})


@signed_in(Role.ADMIN)
async def audit(request: Request) -> Response:
    """Who did what, newest first, in sentences; filtered by person, business, kind and dates.
    A filter that is not valid is said beside it (422), the filters kept."""
    filters = _audit_filters(request)
    try:
        async with request.app.state.db.transaction(write=False) as session:
            log = await audit_page.readable_log(session, filters)
    except Invalid as refused:
        async with request.app.state.db.transaction(write=False) as session:
            log = await audit_page.readable_log(session, AuditFilters())
        context = {"log": log, "filters": filters, "refused": refused, "empty": True}
        context["kinds"] = audit_page.kinds()
        return render(request, "agency/audit.html", context, status=refused.status)
    context = {"log": log, "filters": filters, "kinds": audit_page.kinds()}
    return render(request, "agency/audit.html", context)


AUDIT_CSV_ROWS = 10_000


@signed_in(Role.ADMIN)
async def audit_csv(request: Request) -> Response:
    """The log as filtered, as a CSV file (the newest 10,000 rows)."""
    async with request.app.state.db.transaction(write=False) as session:
        content = await audit_page.audit_csv(
            session, _audit_filters(request), timezone=DEFAULT_TIMEZONE, limit=AUDIT_CSV_ROWS
        )
    disposition = f'attachment; filename="audit-{now(request):%Y-%m-%d}.csv"'
    return Response(
        content, media_type=audit_page.CSV_TYPE, headers={"Content-Disposition": disposition}
    )


# --- the invitee's own page (no session: the signed link is the proof) ---------------------------


async def password_form(request: Request) -> Response:
    async with request.app.state.db.transaction(write=False) as session:
        person = await admin.user_of_password_link(
            session, secret(request), request.path_params["token"], now=now(request)
        )
    response = render(request, "login/set_password.html", {"person": person})
    response.headers.update(PRIVATE)
    return response


async def set_password(request: Request) -> Response:
    """A password refused (too short, the two differ) is the form again with why, beside the
    field; what was typed in a password field is never sent back. Set, it signs the person in
    as the sign-in page would (with the second step when the agency requires one of him)."""
    form = await request.form()
    try:
        async with request.app.state.db.transaction() as session:
            person = await admin.set_password_from_link(
                session,
                secret(request),
                request.path_params["token"],
                password=text(form, "password"),
                repeated=text(form, "repeated"),
                now=now(request),
            )
    except Invalid as refused:
        async with request.app.state.db.transaction(write=False) as session:
            person = await admin.user_of_password_link(
                session, secret(request), request.path_params["token"], now=now(request)
            )
        context = {"person": person, "refused": refused}
        response = render(request, "login/set_password.html", context, status=refused.status)
        response.headers.update(PRIVATE)
        return response
    response = await sign_in_with_password(request, person.email, text(form, "password"))
    response.headers.update(PRIVATE)
    return response
