"""The agency's reports (per secretary, per business and month) and their files; admins only."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from console.reports import report_exports, reports
from models import Role
from routes.access import signed_in, user_of
from routes.forms import now
from routes.templating import render


@signed_in(Role.ADMIN)
async def page(request: Request) -> Response:
    """Both reports for a period; a period that is not valid is said in place, with 422."""
    query = request.query_params
    async with request.app.state.db.transaction(write=False) as session:
        screen = await reports.report_screen(
            session, user_of(request), query.get("from"), query.get("to"), now=now(request)
        )
    status = 422 if screen.error else 200
    context = {
        "screen": screen,
        "number": reports.number,
        "secretary_labels": report_exports.secretary_labels(),
        "billing_labels": report_exports.billing_labels(),
        "state_labels": report_exports.state_labels(),
        "states": report_exports.STATES,
    }
    return render(request, "agency/reports.html", context, status=status)


async def _report(request: Request) -> reports.AgencyReport:
    query = request.query_params
    async with request.app.state.db.transaction(write=False) as session:
        return await reports.agency_report(
            session, user_of(request), query.get("from"), query.get("to"), now=now(request)
        )


def _download(content: bytes, media_type: str, name: str) -> Response:
    disposition = f'attachment; filename="{name}"'
    return Response(content, media_type=media_type, headers={"Content-Disposition": disposition})


@signed_in(Role.ADMIN)
async def secretaries_csv(request: Request) -> Response:
    report = await _report(request)
    name = report_exports.filename(report, "secretaries", "csv")
    return _download(report_exports.to_csv(report, "secretaries"), report_exports.CSV_TYPE, name)


@signed_in(Role.ADMIN)
async def billing_csv(request: Request) -> Response:
    report = await _report(request)
    name = report_exports.filename(report, "billing", "csv")
    return _download(report_exports.to_csv(report, "billing"), report_exports.CSV_TYPE, name)


@signed_in(Role.ADMIN)
async def states_csv(request: Request) -> Response:
    report = await _report(request)
    name = report_exports.filename(report, "agent-states", "csv")
    return _download(report_exports.to_csv(report, "states"), report_exports.CSV_TYPE, name)


@signed_in(Role.ADMIN)
async def xlsx_export(request: Request) -> Response:
    report = await _report(request)
    name = report_exports.filename(report, "reports", "xlsx")
    return _download(report_exports.to_xlsx(report), report_exports.XLSX_TYPE, name)
