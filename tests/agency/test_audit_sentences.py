"""An audit log a person can read (issue 24, point 7): sentences in the reader's language with
names ("Michal viewed the lead of Dana Cohen (Cohen Plumbing)"), filters by person, business and
kind (a bad one said beside it), a CSV export with a BOM, and API reads of a lead's
conversations and of one conversation recorded as the lead page's views are."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import httpx

from console.base.db import Database
from console.intake import arrivals
from console.intake.arrivals import NewLead
from console.leads import calls
from console.people import api_tokens
from tests.factories import csrf_token, make_business, make_user, sign_in

NOW = datetime.now(UTC)


def sentences(page: httpx.Response) -> list[str]:
    assert page.status_code == 200, page.text[:500]
    parts = page.text.split('<p class="audit-sentence" dir="auto">')[1:]
    return [part.split("</p>")[0] for part in parts]


async def test_the_log_reads_as_sentences_with_names(
    client: httpx.AsyncClient, db: Database
) -> None:
    async with db.transaction() as session:
        plumbing = await make_business(session, name="Cohen Plumbing")
        clinic = await make_business(session, name="מרפאת לוי")
        admin = await make_user(session, "admin", name="Ruth")
        michal = await make_user(session, "secretary", plumbing, clinic, name="Michal")
        avi = await make_user(session, "owner", plumbing, name="Avi")
        lead = await arrivals.create_lead(
            session,
            michal,
            NewLead(business_id=str(plumbing.id), phone="052-7654321", name="Dana Cohen"),
            now=NOW,
        )
        call = await calls.start_interaction(session, michal, lead.id, kind="inbound_call", now=NOW)
        made = await api_tokens.create_token(session, avi, "crm", now=NOW)
    await sign_in(client, michal.email)
    assert (await client.get(f"/leads/{lead.id}")).status_code == 200
    bearer = {"Authorization": f"Bearer {made.secret}"}
    read = await client.get(f"/api/v1/leads/{lead.id}/interactions", headers=bearer)
    assert read.status_code == 200 and read.json()["items"]
    assert (await client.get(f"/api/v1/interactions/{call.id}", headers=bearer)).status_code == 200

    client.cookies.clear()
    await sign_in(client, admin.email)
    token = await csrf_token(client, "/agency/audit")
    hebrew = sentences(await client.get("/agency/audit", params={"kind": "views"}))
    assert hebrew[-1] == "Michal: צפייה בפנייה של Dana Cohen (Cohen Plumbing)"
    await client.post("/locale", data={"locale": "en", "next": "/", "csrf_token": token})

    page = await client.get("/agency/audit", params={"kind": "views"})
    assert sentences(page) == [
        "Avi read a conversation with Dana Cohen (Cohen Plumbing) through the API",
        "Avi read the conversations with Dana Cohen (Cohen Plumbing) through the API",
        "Michal viewed the lead of Dana Cohen (Cohen Plumbing)",
    ]
    assert str(lead.id) not in page.text and str(call.id) not in page.text  # names, not ids
    everything = sentences(await client.get("/agency/audit"))
    assert "Michal signed in" in everything and "Ruth signed in" in everything
    assert "Avi created the API token crm" in everything
    by_person = sentences(await client.get("/agency/audit", params={"actor": str(michal.id)}))
    assert by_person == [
        "Michal viewed the lead of Dana Cohen (Cohen Plumbing)",
        "Michal signed in",
    ]
    by_business = await client.get("/agency/audit", params={"business": str(clinic.id)})
    assert sentences(by_business) == []
    signins = sentences(await client.get("/agency/audit", params={"kind": "sign_in"}))
    assert signins == ["Ruth signed in", "Michal signed in"]

    # a filter that is not valid: said beside it, the choice kept
    for params, field in (
        ({"kind": "gossip"}, "kind"),
        ({"actor": "nobody"}, "actor"),
        ({"since": "31.02.2026"}, "since"),
    ):
        refused = await client.get("/agency/audit", params=params)
        assert refused.status_code == 422, params
        assert f'id="audit-{field}-error"' in refused.text, params

    # the export: the same rows as a file with a BOM, the sentences in the reader's language
    exported = await client.get("/agency/audit.csv", params={"kind": "views"})
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    assert "attachment" in exported.headers["content-disposition"]
    assert exported.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert rows[0] == ["When", "Who", "E-mail", "From", "Business", "What", "Action"]
    assert [row[5] for row in rows[1:]] == sentences(page)
    assert rows[-1][1] == "Michal" and rows[-1][4] == "Cohen Plumbing"
    assert (await client.get("/agency/audit.csv", params={"kind": "x"})).status_code == 422

    client.cookies.clear()
    await sign_in(client, avi.email)
    assert (await client.get("/agency/audit.csv")).status_code == 404  # admins only
