"""A realistic demo agency: Israeli small businesses, their owners, secretaries and an admin."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from console import accounts
from models import Business, User

DEMO_PASSWORD = "mazkira-demo"  # noqa: S105 - printed to the demo user on purpose

BUSINESSES = [
    # slug, name, owner e-mail, owner name
    ("cohen-plumbing", "אינסטלציה כהן", "avi@cohen-plumbing.demo", "אבי כהן"),
    ("levi-dental", "מרפאת שיניים ד״ר לוי", "dana@levi-dental.demo", "ד״ר דנה לוי"),
    ("avraham-law", "אברהם ושות׳ – משרד עורכי דין", "yossi@avraham-law.demo", "עו״ד יוסי אברהם"),
    ("noy-design", "סטודיו נוי לעיצוב פנים", "noy@noy-design.demo", "נוי בר"),
    ("mizrahi-build", "מזרחי שיפוצים ובנייה", "moshe@mizrahi-build.demo", "משה מזרחי"),
]

SECRETARIES = [
    # e-mail, name, the businesses she serves, the ones she backs up
    (
        "michal@mazkira.demo",
        "מיכל",
        ["cohen-plumbing", "mizrahi-build", "levi-dental"],
        ["noy-design"],
    ),
    ("noa@mazkira.demo", "נועה", ["levi-dental", "avraham-law"], ["cohen-plumbing"]),
    ("shira@mazkira.demo", "שירה", ["noy-design", "avraham-law"], ["mizrahi-build"]),
]

ADMIN = ("admin@mazkira.demo", "רונית – מנהלת המוקד")


async def seed_if_empty(session: AsyncSession) -> list[tuple[str, str, str]] | None:
    """Seed the demo on an empty database and return its logins; leave any other database be."""
    if await session.scalar(select(func.count()).select_from(Business)):
        return None
    if await session.scalar(select(func.count()).select_from(User)):
        return None
    logins: list[tuple[str, str, str]] = []
    businesses = {}
    for slug, name, owner_email, owner_name in BUSINESSES:
        businesses[slug] = await accounts.create_business(session, slug=slug, name=name)
        await accounts.create_user(
            session,
            email=owner_email,
            password=DEMO_PASSWORD,
            role="owner",
            name=owner_name,
            businesses=[slug],
        )
        logins.append(("owner", owner_email, DEMO_PASSWORD))
    for email, name, serves, backs_up in SECRETARIES:
        secretary = await accounts.create_user(
            session,
            email=email,
            password=DEMO_PASSWORD,
            role="secretary",
            name=name,
            businesses=serves,
        )
        for slug in backs_up:
            await accounts.link_user(session, secretary, businesses[slug], backup=True)
        logins.append(("secretary", email, DEMO_PASSWORD))
    await accounts.create_user(
        session, email=ADMIN[0], password=DEMO_PASSWORD, role="admin", name=ADMIN[1]
    )
    logins.append(("admin", ADMIN[0], DEMO_PASSWORD))
    return logins
