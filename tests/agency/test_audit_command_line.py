"""What the command line does is in the audit log as the pages' changes are, and the audit page
names it in Hebrew and English."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from console.base.db import Database
from console.people.audit import Actor
from console.sla import sla
from tests.factories import csrf_token, make_business, make_user, sign_in

NOW = datetime.now(UTC)


def audit_rows(page: httpx.Response) -> list[str]:
    assert page.status_code == 200, page.text
    return [row.split("</li>")[0] for row in page.text.split('class="audit-row"')[1:]]


async def test_the_audit_page_names_the_command_line(
    client: httpx.AsyncClient, db: Database
) -> None:
    async with db.transaction() as session:
        business = await make_business(session)
        admin = await make_user(session, "admin")
        await sla.set_policy(session, Actor.command_line(NOW), business, minutes=3)
    # Someone typing "cli" on the sign-in page is not the command line: the address tells.
    assert (await sign_in(client, "cli", "not-a-password")).status_code == 401
    await sign_in(client, admin.email)

    [policy] = audit_rows(await client.get("/agency/audit", params={"action": "sla."}))
    assert f"שורת הפקודה: שינוי התחייבות זמן המענה של {business.name}" in policy
    [typed] = audit_rows(await client.get("/agency/audit", params={"action": "sign_in.failed"}))
    assert "שורת הפקודה" not in typed and "ניסיון כניסה כושל בשם cli" in typed
    # The person filter finds the command line's rows by "cli", as it stores them.
    assert len(audit_rows(await client.get("/agency/audit", params={"person": "cli"}))) == 2

    token = await csrf_token(client, "/agency")
    form = {"locale": "en", "next": "/agency/audit", "csrf_token": token}
    assert (await client.post("/locale", data=form)).status_code == 303
    [policy] = audit_rows(await client.get("/agency/audit", params={"action": "sla."}))
    assert f"The command line changed the response promise of {business.name}" in policy
