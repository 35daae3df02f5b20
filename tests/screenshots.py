"""Screenshots of the main screens, in Hebrew and in English: `python -m tests.screenshots`.

Seeds the demo agency on a fresh SQLite database with the clock stopped at a fixed moment,
serves the console on a free port with that clock (jobs off, so nothing moves), signs in as
each role in Debian's Chromium (its clock stopped at the same moment) and writes
`docs/screenshots/<screen>.<he|en>.png` at a fixed viewport. Run again after a visible change
and commit the pictures; the same data and clock give the same pictures.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvicorn
from sqlalchemy import select

from asgi import create_app
from console.base.config import Settings
from console.base.db import Database
from console.base.migrate import upgrade
from console.demo.demo import ADMIN, DEMO_PASSWORD, LIVE_CALLER, seed_if_empty
from console.sla import sla
from console.tasks import task_sla
from console.tasks.task_links import TaskLinks
from models import Business, Interaction, User
from tests.browser import CHROMIUM, chromium
from tests.servers import ROOT, free_port

# Tuesday 13 January 2026, 10:30 in Jerusalem: a working morning, no holiday near.
MOMENT = datetime(2026, 1, 13, 8, 30, tzinfo=UTC)
DESK = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
OUT = ROOT / "docs" / "screenshots"
SECRETARY = LIVE_CALLER
OWNER = "avi@cohen-plumbing.demo"
BUSINESS = "cohen-plumbing"
LANGUAGES = {"he": "he-IL", "en": "en-US"}


class StoppedClock:
    def now(self) -> datetime:
        return MOMENT


@dataclass(frozen=True)
class Screen:
    name: str
    who: str
    path: str  # may name {lead} or {business}
    viewport: dict[str, int]
    ready: str = "main"  # a selector that is visible once the screen is drawn
    action: Callable[[Any], Awaitable[None]] | None = None


async def charts_drawn(page: Any) -> None:
    """static/kpis.js draws the charts (without animation) once Chart.js has loaded."""
    await page.wait_for_function("() => !!Chart.getChart(document.getElementById('chart-days'))")


async def thread_in_view(page: Any) -> None:
    """The lead's conversation at the top of the picture, under the header."""
    await page.evaluate("document.querySelector('section.conversation').scrollIntoView()")


SCREENS = (
    Screen("inbox", SECRETARY, "/inbox", DESK, "tr.lead-row"),
    Screen("lead", SECRETARY, "/leads/{lead}", DESK, ".presence .viewer.calling"),
    Screen(
        "conversation",
        SECRETARY,
        "/leads/{conversation}",
        DESK,
        "ol.thread .bubble.in",
        thread_in_view,
    ),
    Screen("tasks", SECRETARY, "/tasks", DESK),
    Screen("alerts", SECRETARY, "/alerts", DESK),
    Screen("portal", OWNER, "/portal", PHONE, "article.handled"),
    Screen("kpis", OWNER, "/portal/kpis", DESK, "dl.kpi-stats", charts_drawn),
    Screen("appointments", OWNER, "/portal/appointments", PHONE),
    Screen("agency", ADMIN[0], "/agency", DESK, "table.grid"),
    Screen("business", ADMIN[0], "/agency/businesses/{business}", DESK),
    Screen("hours", ADMIN[0], "/agency/businesses/{business}/hours", DESK, "#week"),
    Screen("script", ADMIN[0], "/agency/businesses/{business}/script", DESK, "#preview"),
    Screen("users", ADMIN[0], "/agency/users", DESK),
    Screen("wallboard", ADMIN[0], "/agency/wallboard", DESK),
    Screen("reports", ADMIN[0], "/agency/reports", DESK),
    Screen("import", ADMIN[0], "/contacts/import", DESK),
)


async def seed(db: Database, settings: Settings) -> dict[str, str]:
    """The demo as it stands at MOMENT, its due alerts raised; the ids the paths name."""
    await upgrade(db)
    async with db.transaction() as session:
        await seed_if_empty(session, now=MOMENT)
    async with db.transaction() as session:
        await sla.sweep(session, now=MOMENT)
        await task_sla.sweep_tasks(session, now=MOMENT, links=TaskLinks.of(settings))
    async with db.transaction(write=False) as session:
        business = await session.scalar(select(Business.id).where(Business.slug == BUSINESS))
        lead = await session.scalar(
            select(Interaction.lead_id)
            .join(User, User.id == Interaction.user_id)
            .where(User.email == SECRETARY, Interaction.status == "draft")
        )
        # A WhatsApp thread of the business: her replies and the customer's answers.
        conversation = await session.scalar(
            select(Interaction.lead_id)
            .where(
                Interaction.business_id == business,
                Interaction.kind == "whatsapp",
                Interaction.direction == "out",
            )
            .order_by(Interaction.started_at.desc())
            .limit(1)
        )
    return {"business": str(business), "lead": str(lead), "conversation": str(conversation)}


async def sign_in(page: Any, url: str, email: str, locale: str) -> None:
    await page.goto(f"{url}/login")
    if await page.get_attribute("html", "lang") != locale:
        await page.click("form[action='/locale'] button")
        await page.wait_for_selector(f"html[lang={locale}]")
    await page.fill("input[name=email]", email)
    await page.fill("input[name=password]", DEMO_PASSWORD)
    await page.click("button.primary")
    await page.wait_for_url(lambda address: "/login" not in address)


async def shoot(url: str, ids: dict[str, str], out: Path, only: set[str]) -> list[Path]:
    written = []
    async with chromium() as browser:
        for locale in ("he", "en"):
            pages: dict[str, Any] = {}  # one signed-in page per person
            for screen in SCREENS:
                if only and screen.name not in only:
                    continue
                if screen.who not in pages:
                    context = await browser.new_context(  # type: ignore[attr-defined]
                        viewport=DESK, locale=LANGUAGES[locale], timezone_id="Asia/Jerusalem"
                    )
                    await context.clock.set_fixed_time(MOMENT)
                    pages[screen.who] = await context.new_page()
                    await sign_in(pages[screen.who], url, screen.who, locale)
                page = pages[screen.who]
                await page.set_viewport_size(screen.viewport)
                await page.goto(url + screen.path.format(**ids))
                await page.wait_for_selector("#live-state.on")  # the socket's news are in
                await page.wait_for_selector(screen.ready)
                if screen.action:
                    await screen.action(page)
                await page.evaluate("document.fonts.ready")
                path = out / f"{screen.name}.{locale}.png"
                await page.screenshot(path=str(path), animations="disabled", caret="hide")
                written.append(path)
                print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
            for page in pages.values():
                await page.context.close()
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help="where the PNGs go")
    parser.add_argument("screens", nargs="*", help="only these screens (default: all)")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        print(f"{CHROMIUM} is missing (apt-get install -y chromium)", file=sys.stderr)
        return 1
    unknown = set(args.screens) - {screen.name for screen in SCREENS}
    if unknown:
        parser.error(f"unknown screens: {', '.join(sorted(unknown))}")
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mazkira-shots-") as folder:
        return asyncio.run(serve_and_shoot(Path(folder) / "demo.db", args.out, set(args.screens)))


async def serve_and_shoot(database: Path, out: Path, only: set[str]) -> int:
    """The demo at MOMENT, served in this process on a free port, photographed."""
    db = Database(f"sqlite+aiosqlite:///{database}")
    settings = Settings(
        database_url=db.url,
        secret_key="screenshots-" + "x" * 40,
        public_url="https://console.mazkira.example",  # the links shown, not the free port
    )
    ids = await seed(db, settings)
    app = create_app(settings, db=db, clock=StoppedClock(), run_jobs=False)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if serving.done():
                return 1
            await asyncio.sleep(0.05)
        await shoot(f"http://127.0.0.1:{port}", ids, out, only)
    finally:
        server.should_exit = True
        await serving
        await db.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
