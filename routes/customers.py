"""Customer records: importing a business's customers, A/B/C on demand, privacy requests."""

from __future__ import annotations

import json

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import Response

from console.base.csv_files import CSV_TYPE
from console.base.errors import Invalid
from console.contacts import contact_import, customer_classes, privacy
from console.contacts.customer_classes import inactive_since
from console.people.tenancy import visible_businesses
from console.screens.contact_page import contact_view
from models import Role
from routes.access import signed_in, user_of
from routes.forms import now, see_other, text, wants_json
from routes.templating import render

WORKERS = (Role.SECRETARY, Role.ADMIN)


@signed_in(*WORKERS)
async def import_page(request: Request) -> Response:
    """Step by step: upload, map the columns (with a preview), import, the report. The file is
    read before the transaction opens; a refused one shows the form again, saying why."""
    form = await request.form() if request.method == "POST" else FormData()
    file, step = form.get("file"), text(form, "step")
    max_bytes = contact_import.max_file_bytes(request.app.state.settings.max_body_bytes)
    upload = None
    if text(form, "business_id"):
        upload = await contact_import.read_import(
            file.filename or "" if isinstance(file, UploadFile) else text(form, "filename"),
            await file.read() if isinstance(file, UploadFile) else None,
            text(form, "payload"),
            max_bytes=max_bytes,
        )
    async with request.app.state.db.transaction(write=step == "import") as session:
        shown = await contact_import.import_step(
            session,
            user_of(request),
            business_id=text(form, "business_id"),
            upload=upload,
            mapping={n: text(form, "map_" + n) for n in contact_import.FIELDS}
            if step in ("preview", "import")
            else None,
            merge=text(form, "duplicates") == "merge",
            commit=step == "import",
            now=now(request),
            address=request.state.client_address,
        )
    context = {"step": shown, "max_kb": max_bytes // 1000}
    return render(request, "customers/import.html", context, status=shown.status)


@signed_in(*WORKERS)
async def import_report(request: Request) -> Response:
    """The rejected and skipped rows of an import just done, as the CSV the page shows."""
    form = await request.form()
    disposition = 'attachment; filename="import-report.csv"'
    content = contact_import.report_file(text(form, "report"))
    return Response(content, media_type=CSV_TYPE, headers={"Content-Disposition": disposition})


@signed_in(*WORKERS)
async def settings_page(request: Request) -> Response:
    """A/B/C on demand and each business's retention period (the admin edits it)."""
    return render(request, "customers/settings.html", await _settings(request))


async def _settings(request: Request, **extra: object) -> dict[str, object]:
    async with request.app.state.db.transaction(write=False) as session:
        businesses = await visible_businesses(session, user_of(request))
    return {"businesses": businesses, **extra}


@signed_in(*WORKERS)
async def classify(request: Request) -> Response:
    form = await request.form()
    async with request.app.state.db.transaction() as session:
        business = await customer_classes.classify_visible(
            session, user_of(request), text(form, "business_id")
        )
    return see_other(request, f"/contacts/settings?classified={business.id}")


@signed_in(Role.ADMIN)
async def set_retention(request: Request) -> Response:
    form = await request.form()
    business_id, typed = request.path_params["business_id"], text(form, "retention_days")
    try:
        async with request.app.state.db.transaction() as session:
            await privacy.set_retention(
                session, user_of(request), business_id, typed, now=now(request)
            )
    except Invalid as refused:  # the page again, the days as typed beside the reason
        if wants_json(request):
            raise
        context = await _settings(request, refused=refused, typed={business_id: typed})
        return render(request, "customers/settings.html", context, status=422)
    return see_other(request, "/contacts/settings")


@signed_in(*WORKERS)
async def export(request: Request) -> Response:
    """Everything held about the contact, as a JSON file (audited)."""
    async with request.app.state.db.transaction() as session:
        document = await privacy.export_contact(
            session,
            user_of(request),
            request.path_params["contact_id"],
            now=now(request),
            address=request.state.client_address,
        )
    disposition = f'attachment; filename="contact-{request.path_params["contact_id"]}.json"'
    return Response(
        json.dumps(document, ensure_ascii=False, indent=2),
        media_type="application/json",
        headers={"Content-Disposition": disposition},
    )


@signed_in(*WORKERS)
async def erase(request: Request) -> Response:
    """Anonymise the contact on their request (audited); the card stays, empty."""
    form = await request.form()
    try:
        async with request.app.state.db.transaction() as session:
            contact = await privacy.erase_contact(
                session,
                user_of(request),
                request.path_params["contact_id"],
                now=now(request),
                address=request.state.client_address,
                confirmed=text(form, "confirm") == "erase",
                store=request.app.state.recordings,
            )
    except Invalid as refused:  # the card again, the reason beside the box to tick
        if wants_json(request):
            raise
        async with request.app.state.db.transaction(write=False) as session:
            view = await contact_view(
                session, user_of(request), request.path_params["contact_id"], now=now(request)
            )
        context = {"view": view, "inactive_before": inactive_since(now(request))}
        context["erase_refused"] = refused
        return render(request, "contacts/show.html", context, status=refused.status)
    return see_other(request, f"/contacts/{contact.id}")
