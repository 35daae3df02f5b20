"""Billing (issue 24, point 4) as one story over HTTP on the agency of the reports tests:
the admin sets a plan (a bad field refused in place, the change audited), the owner reads his
meter, his past months and a statement worked out by hand, and the agency's report, the
month's CSV and XLSX and the statement say the same numbers."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import httpx
import openpyxl
from bs4 import BeautifulSoup
from sqlalchemy import select

from console.base.db import Database
from console.reports.billing import vat_basis_points
from models import AuditEvent
from models.billing import BillingPlan
from tests.factories import MovableClock, csrf_token, sign_in
from tests.reports.test_reports import NOW, make_agency

MARCH = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
PLAN = {
    "monthly_fee": "2,500",
    "included_calls": "2",
    "included_minutes": "10",
    "included_messages": "1",
    "call_price": "5",
    "minute_price": "1.25",
    "message_price": "0.35",
}
# Alpha Clinic, March 2025 (the report's row): 3 calls, 19.0 talk minutes, 1 message in, 1 out.
#   fee 250000 + 1 call beyond × 500 + 9.0 minutes beyond × 125 (1125) + 1 message × 35
#   = 251660 before VAT; VAT 18% = 45298.8 → 45299; total 296959 agorot.
MARCH_BILL = {"fee": 250000, "calls": 500, "minutes": 1125, "messages": 35}
MARCH_TOTALS = {"subtotal": 251660, "vat": 45299, "total": 296959}
# April: 1 call, 4.0 minutes, 1 message out: nothing beyond; 250000 + 45000.
APRIL_TOTAL = 295000


def agorot_of(html: str) -> dict[str, int]:
    soup = BeautifulSoup(html, "html.parser")
    return {
        str(tr["data-key"]): int(str(td["data-agorot"]))
        for tr in soup.select("#statement tr[data-key]")
        if (td := tr.select_one("td[data-agorot]")) is not None
    }


async def test_a_plan_the_statement_the_report_and_the_export_agree(
    app: object, client: httpx.AsyncClient, db: Database
) -> None:
    agency = await make_agency(db)
    a = agency.a.id
    clock = MovableClock(MARCH)
    app.state.clock = clock  # type: ignore[attr-defined]
    await sign_in(client, agency.admin.email)
    token = await csrf_token(client, f"/agency/businesses/{a}/plan")

    refused = await client.post(
        f"/agency/businesses/{a}/plan",
        data={**PLAN, "minute_price": "1.255", "csrf_token": token},
        headers={"HX-Request": "true"},
    )
    assert refused.status_code == 422
    assert 'id="plan-minute_price-error"' in refused.text and 'value="1.255"' in refused.text
    assert 'value="2,500"' in refused.text and "<html" not in refused.text
    for field, bad in (("included_calls", "-1"), ("monthly_fee", ""), ("call_price", "2e3")):
        answer = await client.post(
            f"/agency/businesses/{a}/plan", data={**PLAN, field: bad, "csrf_token": token}
        )
        assert answer.status_code == 422 and f'id="plan-{field}-error"' in answer.text, field
    saved = await client.post(f"/agency/businesses/{a}/plan", data={**PLAN, "csrf_token": token})
    assert saved.status_code == 303
    again = await client.post(
        f"/agency/businesses/{a}/plan", data={**PLAN, "monthly_fee": "2500", "csrf_token": token}
    )
    assert again.status_code == 303  # the same month: the row is changed, not added
    async with db.transaction(write=False) as session:
        plans = list(await session.scalars(select(BillingPlan)))
        audits = list(
            await session.scalars(
                select(AuditEvent)
                .where(AuditEvent.action == "billing_plan.changed")
                .order_by(AuditEvent.id)
            )
        )
    assert [(p.starts_on.isoformat(), p.monthly_fee_agorot) for p in plans] == [
        ("2025-03-01", 250000)
    ]
    assert [e.details["before"] is None for e in audits] == [True, False]
    assert audits[0].details["after"]["minute_price_agorot"] == 125
    assert audits[0].actor_id == agency.admin.id and audits[0].business_id == a

    clock.moment = NOW  # May 2025: her session of March has ended
    await sign_in(client, agency.admin.email)
    report = await client.get("/agency/reports/billing.csv?from=2025-03-01&to=2025-04-30")
    usage = {
        (r["business"].removeprefix("'"), r["month"]): r
        for r in csv.DictReader(io.StringIO(report.content.decode("utf-8-sig")))
    }
    exported = await client.get("/agency/billing.csv?month=2025-03")
    assert exported.content.startswith(b"\xef\xbb\xbf")
    rows = {
        r["business"].removeprefix("'"): r
        for r in csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig")))
    }
    alpha = rows["Alpha Clinic"]
    for key in ("calls", "talk_minutes", "messages_in", "messages_out"):
        assert alpha[key] == usage["Alpha Clinic", "2025-03"][key], key
        assert rows["=Beta Plumbing"][key] == usage["=Beta Plumbing", "2025-03"][key], key
    assert {k: int(alpha[f"{k}_agorot"]) for k in ("calls", "minutes", "messages")} == {
        k: v for k, v in MARCH_BILL.items() if k != "fee"
    }
    assert (
        int(alpha["subtotal_agorot"]),
        int(alpha["vat_agorot"]),
        int(alpha["total_agorot"]),
    ) == (
        MARCH_TOTALS["subtotal"],
        MARCH_TOTALS["vat"],
        MARCH_TOTALS["total"],
    )
    assert alpha["vat_percent"] == "18.0" and rows["=Beta Plumbing"]["total_agorot"] == ""
    workbook = await client.get("/agency/billing.xlsx?month=2025-03")
    sheet = openpyxl.load_workbook(io.BytesIO(workbook.content)).worksheets[0]
    by_name = {str(r[1]).removeprefix("'"): r for r in sheet.iter_rows(min_row=2, values_only=True)}
    assert by_name["Alpha Clinic"][-1] == MARCH_TOTALS["total"]
    assert by_name["Alpha Clinic"][4] == 3 and by_name["Alpha Clinic"][8] == 19.0
    page = await client.get("/agency/billing?month=2025-03")
    assert page.status_code == 200 and f'data-agorot="{MARCH_TOTALS["total"]}"' in page.text
    wrong = await client.get("/agency/billing?month=2025-13")
    assert wrong.status_code == 422 and 'id="billing-month-error"' in wrong.text

    owner = httpx.AsyncClient(transport=client._transport, base_url="http://testserver")
    await sign_in(owner, agency.owner.email)
    meter = await owner.get("/portal/billing")
    assert meter.status_code == 200
    soup = BeautifulSoup(meter.text, "html.parser")
    totals = {
        str(tr["data-month"]): tr.select_one("td[data-total]")
        for tr in soup.select("#past-months tr[data-month]")
    }
    assert totals["2025-03"]["data-total"] == str(MARCH_TOTALS["total"])  # type: ignore[index]
    assert totals["2025-04"]["data-total"] == str(APRIL_TOTAL)  # type: ignore[index]
    statement = await owner.get(f"/portal/businesses/{a}/statement?month=2025-03")
    assert statement.status_code == 200
    assert agorot_of(statement.text) == MARCH_BILL | MARCH_TOTALS
    assert "not a tax invoice" in statement.text or "אינו חשבונית מס" in statement.text
    assert (await owner.get(f"/portal/businesses/{agency.b.id}/statement")).status_code == 404
    assert (await owner.get(f"/portal/billing?business={agency.b.id}")).status_code == 404
    assert (await owner.get(f"/agency/businesses/{a}/plan")).status_code == 404
    assert (await owner.get("/agency/billing.csv?month=2025-03")).status_code == 404
    wrong_month = await owner.get(f"/portal/businesses/{a}/statement?month=March")
    assert wrong_month.status_code == 422
    assert 'id="statement-month-error"' in wrong_month.text
    await owner.aclose()


def test_the_vat_rate_follows_the_month() -> None:
    assert vat_basis_points(datetime(2024, 12, 1).date()) == 1700
    assert vat_basis_points(datetime(2025, 1, 1).date()) == 1800
