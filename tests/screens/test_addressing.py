"""Hebrew that addresses each person rightly: a secretary chooses feminine, masculine or neutral
plural on her own settings page (neutral by default) and the pages speak to her so; an admin sets
an owner's form, and the owner's hand-off message greets the owner by name in that form. English
reads the same whatever the choice; a form that is none of the three changes nothing."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import httpx
from sqlalchemy import select

from console.base import i18n
from console.base.db import Database
from console.intake import arrivals
from console.intake.arrivals import NewLead
from console.tasks import tasks
from console.tasks.task_links import TaskLinks
from models import Notification, User
from tests.conftest import SECRET
from tests.factories import csrf_token, make_business, make_user, sign_in

SUNDAY_9 = datetime(2026, 11, 22, 7, 0, tzinfo=UTC)  # 09:00 in Jerusalem, a working Sunday
LINKS = TaskLinks(SECRET, "https://console.example.test")

# What a secretary reads on the new-call page and in the shortcuts, and the settings page's own
# sentence after she saves; what an owner reads in a hand-off message.
SECRETARY = {
    "plural": ("הקלידו את מספר הפונה:", "זמינות / הפסקה / ניתוק", "בחרו איך"),
    "feminine": ("הקלידי את מספר הפונה:", "אני זמינה / בהפסקה", "בחרי איך"),
    "masculine": ("הקלד את מספר הפונה:", "אני זמין / בהפסקה", "בחר איך"),
}
OWNER = {"plural": "סמנו שראיתם:", "feminine": "סמני שראית:", "masculine": "סמן שראית:"}


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", html)


async def test_each_person_is_addressed_in_the_form_they_chose(
    client: httpx.AsyncClient, db: Database
) -> None:
    async with db.transaction() as session:
        business = await make_business(session)
        secretary = await make_user(session, "secretary", business)
        owner = await make_user(session, "owner", business, name="ד״ר דנה לוי")
        admin = await make_user(session, "admin")
        lead = await arrivals.create_lead(
            session,
            None,
            NewLead(business_id=str(business.id), phone="052-7654321", name="יוסי"),
            now=SUNDAY_9,
            business=business,
        )
    assert secretary.addressed_as == owner.addressed_as == "plural"  # the default

    await sign_in(client, secretary.email)
    page = _text((await client.get("/leads/new")).text)
    assert SECRETARY["plural"][0] in page and SECRETARY["plural"][1] in page
    for form, (new_call, shortcuts, settings_sentence) in SECRETARY.items():
        token = await csrf_token(client, "/settings/addressing")
        saved = await client.post(
            "/settings/addressing", data={"addressed_as": form, "csrf_token": token}
        )
        assert saved.status_code == 200 and settings_sentence in _text(saved.text), form
        page = _text((await client.get("/leads/new")).text)
        assert new_call in page and shortcuts in page, form
        others = [words[0] for other, words in SECRETARY.items() if other != form]
        assert not any(wording in page for wording in others), form

    # Not one of the three: refused beside the choices, nothing changed.
    token = await csrf_token(client, "/settings/addressing")
    refused = await client.post(
        "/settings/addressing", data={"addressed_as": "neuter", "csrf_token": token}
    )
    assert refused.status_code == 422
    assert 'id="addressing-addressed_as-error"' in refused.text
    assert "בחר לשון נקבה, לשון זכר או לשון רבים." in refused.text  # still spoken to as a man

    # English has one form for everyone.
    client.cookies.set("mazkira_lang", "en")
    page = _text((await client.get("/leads/new")).text)
    assert "Type the caller's number" in page
    assert "I am available / on a break / offline" in page
    client.cookies.clear()

    # The admin sets the owner's form; the hand-off message names her and speaks in it.
    await sign_in(client, admin.email)
    users_page = (await client.get("/agency/users")).text
    assert f'action="/agency/users/{owner.id}/addressed-as"' in users_page
    for form, mark_seen in OWNER.items():
        token = await csrf_token(client, "/agency/users")
        changed = await client.post(
            f"/agency/users/{owner.id}/addressed-as",
            data={"addressed_as": form, "csrf_token": token},
        )
        assert changed.status_code == 303, form
        async with db.transaction() as session:
            task = await tasks.hand_off(
                session,
                secretary,
                lead.id,
                tasks.HandOff(
                    assignee_id=str(owner.id), title=f"לחזור ליוסי ({form})", due="2026-11-23T12:00"
                ),
                now=SUNDAY_9,
                links=LINKS,
            )
            notice = await session.scalar(
                select(Notification).where(Notification.idempotency_key == f"task:{task.id}:handed")
            )
            stored = await session.get(User, owner.id)
        assert stored is not None and stored.addressed_as == form
        assert notice is not None
        assert notice.body.startswith("שלום ד״ר דנה לוי,"), notice.body
        assert mark_seen in notice.body and "בעל העסק" not in notice.body, (form, notice.body)


def test_a_string_with_forms_falls_back_to_the_plain_one_elsewhere() -> None:
    """A string without forms reads the same to everyone; English ignores the form."""
    with i18n.using_locale("he"), i18n.addressing("feminine"):
        assert i18n.gettext("Save") == "שמירה"
        assert i18n.gettext("Pick the outcome of the call.") == "בחרי את תוצאת השיחה."
    with i18n.using_locale("he"), i18n.addressing("no such form"):
        assert i18n.gettext("Pick the outcome of the call.") == "בחרו את תוצאת השיחה."
    with i18n.using_locale("en"), i18n.addressing("masculine"):
        assert i18n.gettext("Pick the outcome of the call.") == "Pick the outcome of the call."
