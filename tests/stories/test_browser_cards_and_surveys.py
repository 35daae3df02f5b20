"""Issue 24, points 11 and 13, in a real browser on a 390x844 phone, in Hebrew and in English:
the customer answers the survey under the business's name with the star control (by keyboard in
Hebrew, by a tap in English) and is thanked at once; the secretary's card shows what filled
itself (lifetime value, customer since, next follow-up) without scrolling sideways."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy import select

from asgi import create_app
from console.base.config import Settings
from console.base.db import Database
from console.base.migrate import upgrade
from console.contacts import contacts
from console.intake import arrivals
from console.intake.arrivals import NewLead
from console.leads import leads
from console.leads.surveys import SurveyLinks
from console.people import accounts
from models.records import Survey
from tests.browser import PHONE, chromium, need_chromium
from tests.factories import MovableClock
from tests.servers import free_port

pytestmark = pytest.mark.browser

SECRET = "cards-and-surveys-" + "x" * 40
PASSWORD = "browser-secret"
NOW = datetime(2026, 3, 16, 8, 0, tzinfo=UTC)
WIDE = "document.documentElement.scrollWidth - document.documentElement.clientWidth"


@dataclass(frozen=True)
class Seeded:
    contact_id: str
    survey_paths: dict[str, str]  # by the contact's language


async def seed(db: Database) -> Seeded:
    """A business, its secretary, and two customers whose won leads have surveys: Dana writes
    in Hebrew (class A, her card is the one opened), John in English."""
    await upgrade(db)
    links = SurveyLinks(SECRET, None)
    paths: dict[str, str] = {}
    async with db.transaction() as session:
        business = await accounts.create_business(
            session, slug="cohen", name="אינסטלציה כהן ובניו בע״מ"
        )
        michal = await accounts.create_user(
            session,
            email="michal@example.test",
            password=PASSWORD,
            role="secretary",
            name="מיכל",
            businesses=["cohen"],
        )
        for name, phone, locale in (
            ("דנה כהן", "054-2345678", "he"),
            ("John", "052-7654321", "en"),
        ):
            lead = await arrivals.create_lead(
                session,
                michal,
                NewLead(business_id=str(business.id), phone=phone, name=name, subject="דוד"),
                now=NOW - timedelta(days=20),
                business=business,
            )
            contact = await contacts.get_contact(session, michal, lead.contact_id)
            await contacts.update_contact(
                session,
                contact,
                {"locale": locale, "abc_class": "A", "earlier_value": "12500"},
                now=NOW,
            )
            await leads.move_stage(
                session,
                michal,
                lead.id,
                stage="won",
                deal_value="2400",
                now=NOW - timedelta(days=19),
            )
            survey = await session.scalar(select(Survey).where(Survey.lead_id == lead.id))
            assert survey is not None  # won: its survey was made
            paths[locale] = f"/survey/{links.token(survey.id, now=NOW)}"
            if locale == "he":
                dana = str(contact.id)
    return Seeded(dana, paths)


@asynccontextmanager
async def serve(db: Database) -> AsyncIterator[str]:
    settings = Settings(database_url=db.url, secret_key=SECRET)
    app = create_app(settings, db=db, clock=MovableClock(NOW), run_jobs=False)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not serving.done(), "the server did not start"
            await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await serving


async def lit(page: Any) -> list[bool]:
    """Which of the five stars are drawn lit (gold), in the page's order."""
    colours = await page.eval_on_selector_all(
        "fieldset.stars label", "els => els.map(e => getComputedStyle(e).color)"
    )
    return [colour == "rgb(224, 161, 0)" for colour in colours]


async def answer_survey(browser: Any, url: str, path: str, lang: str) -> None:
    page = await (
        await browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    ).new_page()
    await page.goto(url + path)
    assert await page.get_attribute("html", "lang") == lang
    assert await page.inner_text("header .brand") == "אינסטלציה כהן ובניו בע״מ"
    assert await page.evaluate(WIDE) <= 0
    if lang == "he":  # by keyboard: into the stars, then three steps on to the fourth
        await page.focus("fieldset.stars input[value='1']")
        await page.keyboard.press("Space")
        for _ in range(3):
            await page.keyboard.press("ArrowDown")
        assert await page.is_checked("fieldset.stars input[value='4']")
        assert await lit(page) == [True, True, True, True, False]
        await page.check("input[name=recommend][value=yes]")
    else:  # by a tap on the fifth star (the radio itself is hidden under it)
        await page.locator("fieldset.stars label").nth(4).tap()
        assert await lit(page) == [True] * 5
        await page.locator("label.choice", has_text="No").tap()
    await page.click("#survey button[type=submit]")
    await page.wait_for_url(lambda address: address.endswith("?thanks=1"))
    thanks = await page.inner_text("main")
    assert ("תודה" in thanks) if lang == "he" else ("Thank you" in thanks), thanks
    assert "already" not in thanks and "כבר" not in thanks
    assert await page.evaluate(WIDE) <= 0
    await page.context.close()


async def read_card(browser: Any, url: str, contact_id: str, lang: str) -> None:
    context = await browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    await context.add_cookies([{"name": "mazkira_lang", "value": lang, "url": url}])
    page = await context.new_page()
    await page.goto(f"{url}/login")
    await page.fill("input[name=email]", "michal@example.test")
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit].primary")
    await page.wait_for_url(lambda address: "/login" not in address)
    await page.goto(f"{url}/contacts/{contact_id}")
    facts = await page.inner_text("dl.card-facts")
    assert "₪14,900.00" in facts and "24.2.26" in facts, facts  # 12,500 + 2,400; the lead's day
    assert "10.3.26" in facts, facts  # class A: 14 days after the last contact (the won deal)
    assert await page.evaluate(WIDE) <= 0, f"the card scrolls sideways in {lang}"
    await context.close()


async def test_the_survey_and_the_card_on_a_phone_in_both_languages() -> None:
    need_chromium()
    with tempfile.TemporaryDirectory(prefix="mazkira-cards-") as folder:
        db = Database(f"sqlite+aiosqlite:///{Path(folder) / 'cards.db'}")
        try:
            seeded = await seed(db)
            async with serve(db) as url, chromium() as browser:
                for lang in ("he", "en"):
                    await answer_survey(browser, url, seeded.survey_paths[lang], lang)
                    await read_card(browser, url, seeded.contact_id, lang)
        finally:
            await db.dispose()
