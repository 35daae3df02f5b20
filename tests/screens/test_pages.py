"""Pages: Hebrew and right-to-left first, an English switch, security headers, clear errors."""

from __future__ import annotations

import httpx

from console.base import catalog
from console.base.db import Database
from tests.factories import csrf_token, make_business, make_user, sign_in


def test_every_string_has_hebrew() -> None:
    hebrew = catalog.load_hebrew()
    extracted = catalog.extract()
    missing_from_catalog = [m.id for m in extracted if m.id and m.id not in hebrew]
    assert missing_from_catalog == [], "run: python -m console.catalog"
    assert catalog.untranslated(hebrew) == [], "translate these in messages.po"


async def test_hebrew_rtl_by_default_and_english_by_choice(
    client: httpx.AsyncClient, db: Database
) -> None:
    page = await client.get("/login")
    assert '<html lang="he" dir="rtl" ' in page.text
    assert "כניסה למזכירה" in page.text

    token = await csrf_token(client)
    switched = await client.post(
        "/locale", data={"locale": "en", "next": "/login", "csrf_token": token}
    )
    assert switched.status_code == 303 and switched.headers["location"] == "/login"
    page = await client.get("/login")
    assert '<html lang="en" dir="ltr" ' in page.text and "Sign in to Mazkira" in page.text

    # A signed-in user's choice is kept on the account, so it follows them to other browsers.
    async with db.transaction() as session:
        business = await make_business(session)
        user = await make_user(session, "secretary", business, locale="en")
    client.cookies.clear()
    await sign_in(client, user.email)
    inbox = await client.get("/inbox")
    assert 'dir="ltr"' in inbox.text and "<h1>Inbox</h1>" in inbox.text
    token = await csrf_token(client, "/inbox")
    await client.post("/locale", data={"locale": "he", "next": "/inbox", "csrf_token": token})
    client.cookies.delete("mazkira_lang")
    inbox = await client.get("/inbox")
    assert 'dir="rtl"' in inbox.text and "<h1>תיבת פניות</h1>" in inbox.text


async def test_locale_switch_never_redirects_off_site(client: httpx.AsyncClient) -> None:
    token = await csrf_token(client)
    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        response = await client.post(
            "/locale", data={"locale": "en", "next": target, "csrf_token": token}
        )
        assert response.headers["location"] == "/"


async def test_security_headers_on_every_page(client: httpx.AsyncClient) -> None:
    for path in ("/login", "/static/app.css", "/healthz", "/no-such-page"):
        response = await client.get(path)
        csp = response.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert response.headers["x-content-type-options"] == "nosniff"
    page = (await client.get("/login")).text
    assert "<script>" not in page and " onclick=" not in page  # no inline script to allow


async def test_unknown_page_and_wrong_method_are_clear(client: httpx.AsyncClient) -> None:
    missing = await client.get("/no-such-page")
    assert missing.status_code == 404 and "אינו קיים" in missing.text
    wrong = await client.delete("/login")
    assert wrong.status_code in {403, 405}


async def test_oversized_body_is_413_before_it_is_read(client: httpx.AsyncClient) -> None:
    token = await csrf_token(client)
    response = await client.post(
        "/login",
        content=b"x" * 2_000_000,
        headers={"content-type": "application/x-www-form-urlencoded", "X-CSRF-Token": token},
    )
    assert response.status_code == 413
