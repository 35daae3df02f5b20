"""Debian's Chromium driven by Playwright (async API), against a real `mazkira serve`."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import IN_CI

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# A form refused in place answers 409 or 422 by design, which Chromium logs as a resource that
# failed to load; every other console error fails the story.
REFUSED_IN_PLACE = r"^Failed to load resource: .* status of (409|422) "

# Reported as console errors in every page, before its own scripts run: a violation of the
# Content-Security-Policy (its report event, beside Chromium's own line), and the htmx errors
# that htmx only signals by event (an out-of-band fragment or a target not on the page).
REPORTS = """
document.addEventListener("securitypolicyviolation", (e) => console.error(
  "CSP violation: " + e.violatedDirective + " refused " + (e.blockedURI || "inline") +
  " at " + e.sourceFile + ":" + e.lineNumber + ":" + e.columnNumber));
for (const name of ["htmx:oobErrorNoTarget", "htmx:targetError", "htmx:swapError"]) {
  document.addEventListener(name, (e) => {
    const what = e.detail.content || e.detail.target;
    const html = what && what.outerHTML ? what.outerHTML.slice(0, 200) : String(what);
    console.error(name + ": " + html);
  });
}
"""


def need_chromium() -> None:
    if Path(CHROMIUM).exists():
        return
    if IN_CI:
        pytest.fail(f"{CHROMIUM} is missing and CI=true requires it (apt-get install -y chromium)")
    pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium)")


class Watched:
    """A browser whose every context reports its pages' console errors, uncaught exceptions,
    CSP violations and htmx target errors to one list (those the story expects aside)."""

    def __init__(self, browser: Any, expected: Iterable[str] = ()) -> None:
        self.browser = browser
        self.expected = [re.compile(REFUSED_IN_PLACE), *(re.compile(e) for e in expected)]
        self.errors: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.browser, name)

    async def new_context(self, **options: Any) -> Any:
        context = await self.browser.new_context(**options)
        await context.add_init_script(script=REPORTS)
        context.on("console", lambda m: self._note(m.text) if m.type == "error" else None)
        context.on("weberror", lambda e: self._note(f"uncaught: {e.error}"))
        return context

    async def new_page(self, **options: Any) -> Any:
        return await (await self.new_context(**options)).new_page()

    def _note(self, text: str) -> None:
        if not any(pattern.search(text) for pattern in self.expected):
            self.errors.append(text)


@asynccontextmanager
async def watched(browser: Any, expected: Iterable[str] = ()) -> AsyncIterator[Any]:
    """`browser` watched (see `Watched`); a story that ends well fails if anything was
    reported. For a test that launches Chromium itself."""
    watching = Watched(browser, expected)
    yield watching
    assert watching.errors == [], watching.errors


@asynccontextmanager
async def chromium(args: Iterable[str] = (), expected: Iterable[str] = ()) -> AsyncIterator[object]:
    """Chromium with `CHROMIUM_ARGS` and `args`, watched: the story fails on any console error,
    uncaught exception or CSP violation of its pages but those matching `expected`."""
    from playwright.async_api import async_playwright, expect

    # An expectation waits up to 15 s (Playwright's 5 s): the suite's two workers share two cores,
    # and a page under the other worker's load may take a while to settle. Passing waits no longer.
    expect.set_options(timeout=15_000)

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *args]
        )
        try:
            async with watched(browser, expected) as watching:
                yield watching
        finally:
            await browser.close()


PHONE = {"width": 390, "height": 844}


async def signed_in_page(
    browser: Any, url: str, email: str, password: str, lang: str, home: str = "/inbox"
) -> tuple[Any, list[str]]:
    """A new phone-sized page in `lang`, signed in as `email` and on `home`; beside it the
    console errors and uncaught exceptions it logs, for the story to hold at none."""
    context = await browser.new_context(viewport=PHONE)
    await context.add_cookies([{"name": "mazkira_lang", "value": lang, "url": url}])
    page = await context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(f"{url}/login")
    await page.fill("input[name=email]", email)
    await page.fill("input[name=password]", password)
    await page.click("button[type=submit].primary")
    await page.wait_for_url(f"{url}{home}")
    return page, errors
