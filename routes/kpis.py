"""The KPI screen and its exports, for an owner (his businesses) and the agency (any business)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from console.reports import kpi_exports, kpi_report
from models import Role
from routes.access import signed_in, user_of
from routes.forms import now
from routes.templating import render


@signed_in(Role.OWNER, Role.ADMIN)
async def page(request: Request) -> Response:
    """A business's numbers and charts for a period; a period that is not valid is 422."""
    query = request.query_params
    async with request.app.state.db.transaction(write=False) as session:
        screen = await kpi_report.kpi_screen(
            session,
            user_of(request),
            query.get("business"),
            query.get("from"),
            query.get("to"),
            now=now(request),
        )
    chart = kpi_report.chart_data(screen.report) if screen.report else None
    context = {"screen": screen, "report": screen.report, "chart": chart}
    return render(request, "portal/kpis.html", context, status=422 if screen.error else 200)


async def _report(request: Request) -> kpi_report.KpiReport:
    query = request.query_params
    async with request.app.state.db.transaction(write=False) as session:
        return await kpi_report.report_for(
            session,
            user_of(request),
            query.get("business", ""),
            query.get("from"),
            query.get("to"),
            now=now(request),
        )


def _download(content: bytes, media_type: str, name: str) -> Response:
    disposition = f'attachment; filename="{name}"'
    return Response(content, media_type=media_type, headers={"Content-Disposition": disposition})


@signed_in(Role.OWNER, Role.ADMIN)
async def csv_export(request: Request) -> Response:
    report = await _report(request)
    name = kpi_exports.filename(report, "csv")
    return _download(kpi_exports.to_csv(report), kpi_exports.CSV_TYPE, name)


@signed_in(Role.OWNER, Role.ADMIN)
async def xlsx_export(request: Request) -> Response:
    report = await _report(request)
    name = kpi_exports.filename(report, "xlsx")
    return _download(kpi_exports.to_xlsx(report), kpi_exports.XLSX_TYPE, name)
