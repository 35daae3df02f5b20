"""Templates are read once per process (issue 23, point 4): outside development a render never
looks at the template files again; TEMPLATES_RELOAD brings back the check for whoever edits them."""

from __future__ import annotations

import os
from dataclasses import replace

import httpx
import pytest

from asgi import create_app
from console.base.config import Settings
from console.base.db import Database


async def template_checks(settings: Settings, db: Database, monkeypatch: pytest.MonkeyPatch) -> int:
    """How often the second sign-in page looked at a template file's modification time."""
    seen: list[str] = []
    getmtime = os.path.getmtime

    def counted(path: str) -> float:
        if str(path).endswith(".html"):
            seen.append(str(path))
        return getmtime(path)

    app = create_app(settings, db=db, run_jobs=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            assert (await client.get("/login")).status_code == 200  # compiled once
            monkeypatch.setattr("jinja2.loaders.os.path.getmtime", counted)
            assert (await client.get("/login")).status_code == 200
            monkeypatch.undo()
    return len(seen)


async def test_a_page_does_not_check_its_templates_outside_development(
    settings: Settings, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert not Settings.from_env({"SECRET_KEY": "x" * 40}).templates_reload
    assert Settings.from_env({"SECRET_KEY": "x" * 40, "TEMPLATES_RELOAD": "1"}).templates_reload
    assert await template_checks(settings, db, monkeypatch) == 0
    developing = replace(settings, templates_reload=True)
    assert await template_checks(developing, db, monkeypatch) > 0
    assert await template_checks(settings, db, monkeypatch) == 0
