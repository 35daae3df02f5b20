"""Leads arriving from outside: the business's web form (JSON or form-encoded)."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from console import intake
from console.errors import Invalid, UnsupportedMedia
from routes.forms import now

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


async def web_form(request: Request) -> Response:
    """`POST /intake/{business_slug}/form` with `X-Intake-Key`: 201 new, 200 when seen before."""
    fields = await _fields(request)
    async with request.app.state.db.transaction() as session:
        business = await intake.business_for_key(
            session, request.path_params["business_slug"], request.headers.get("x-intake-key", "")
        )
        received = await intake.receive_form(
            session, business, intake.parse_form(fields), now=now(request)
        )
    body = {
        "lead_id": str(received.lead.id),
        "contact_id": str(received.lead.contact_id),
        "duplicate": received.duplicate,
    }
    return JSONResponse(body, status_code=200 if received.duplicate else 201)


async def _fields(request: Request) -> dict[str, object]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        try:
            parsed = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError):
            raise Invalid("The body is not valid JSON.", field="body") from None
        if not isinstance(parsed, dict):
            raise Invalid("The body must be a JSON object.", field="body")
        return parsed
    if content_type in FORM_TYPES:
        form = await request.form()
        return {key: value for key, value in form.items() if isinstance(value, str)}
    raise UnsupportedMedia("Send JSON or a form (application/x-www-form-urlencoded).")
