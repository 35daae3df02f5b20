"""What the busiest screens cost in this process: `python -m bench.render [--db postgres]
[--renders 200] [--requests 100] [--screen inbox]...`.

On `bench.http`'s data (10,000 leads, the secretary seeing 7,000 open; `bench.inbox.prepare`'s
database, made when missing), signed in as the seeded secretary and owner, for the inbox, one of
her leads, its contact and the owner's portal: the template alone re-rendered with the context
its route handed it (in Hebrew, no SQL), then the whole request through the app (httpx,
middleware, session, statements, template). Prints, per screen, the CPU milliseconds of a
render and of a request (process time, so another process's load counts less than on the wall
clock), the statements, the page's bytes and, for the inbox, its rows' bytes; the last line is
one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time
from typing import Any

import httpx
from sqlalchemy import event

from bench.inbox import bench_app, prepare, sign_in
from console.base import i18n
from routes import templating

SECRETARY_OPEN = 7_000


async def measure(
    db: Any, renders: int, requests: int, only: list[str] | None = None
) -> dict[str, Any]:
    app = bench_app(db)
    handed: dict[str, tuple[str, dict[str, Any]]] = {}
    original = templating.templates.TemplateResponse

    def keep(request: Any, name: str, context: dict[str, Any], **kwargs: Any) -> Any:
        response = original(request, name, context, **kwargs)
        handed[request.url.path] = (name, dict(response.context))  # type: ignore[attr-defined]
        return response

    templating.templates.TemplateResponse = keep  # type: ignore[method-assign,assignment]
    statements: list[str] = []

    def record(*args: object) -> None:
        if not str(args[2]).startswith(("BEGIN", "COMMIT", "ROLLBACK")):
            statements.append(str(args[2]))

    results: dict[str, Any] = {}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        her = httpx.AsyncClient(transport=transport, base_url="http://bench")
        owner = httpx.AsyncClient(transport=transport, base_url="http://bench")
        async with her, owner:
            await sign_in(her)
            await sign_in(owner, "owner@bench.test")
            inbox = await her.get("/inbox")
            lead_id = re.search(r'<tr id="lead-([0-9a-f-]{36})"', inbox.text)
            assert lead_id, "no lead in her inbox"
            lead = await her.get(f"/leads/{lead_id.group(1)}")
            contact_id = re.search(r'href="/contacts/([0-9a-f-]{36})"', lead.text)
            assert contact_id, "no contact on the lead page"
            screens = {
                "inbox": (her, "/inbox"),
                "lead": (her, f"/leads/{lead_id.group(1)}"),
                "contact": (her, f"/contacts/{contact_id.group(1)}"),
                "portal": (owner, "/portal"),
            }
            for screen, (client, path) in screens.items():
                if only and screen not in only:
                    continue
                for _ in range(5):  # warm caches and the session's last-seen stamp
                    page = await client.get(path)
                    assert page.status_code == 200, (path, page.status_code)
                name, context = handed[path]
                template = templating.env.get_template(name)
                with i18n.using_locale("he"):
                    started = time.process_time()
                    for _ in range(renders):
                        html = template.render(context)
                    render_ms = (time.process_time() - started) * 1000 / renders
                event.listen(db.engine.sync_engine, "before_cursor_execute", record)
                started = time.process_time()
                for _ in range(requests):
                    statements.clear()
                    page = await client.get(path)
                request_ms = (time.process_time() - started) * 1000 / requests
                event.remove(db.engine.sync_engine, "before_cursor_execute", record)
                result = {
                    "render_ms": round(render_ms, 2),
                    "request_ms": round(request_ms, 2),
                    "statements": len(statements),
                    "bytes": len(page.content),
                    "rendered_bytes": len(html.encode()),
                }
                rows = re.findall(r'<tr id="lead-.*?</tr>', page.text, re.S)
                if rows:
                    result["rows"] = len(rows)
                    result["row_bytes"] = round(sum(len(r.encode()) for r in rows) / len(rows))
                print(screen, result, flush=True)
                results[screen] = result
    templating.templates.TemplateResponse = original  # type: ignore[method-assign]
    return results


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--leads", type=int, default=10_000)
    parser.add_argument("--renders", type=int, default=200)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--screen", action="append", choices=["inbox", "lead", "contact", "portal"])
    args = parser.parse_args()
    db = await prepare(args.db, args.leads, 1_000, secretary_open=SECRETARY_OPEN)
    try:
        results = await measure(db, args.renders, args.requests, args.screen)
    finally:
        await db.dispose()
    print(json.dumps({"db": args.db, "leads": args.leads, "screens": results}))


if __name__ == "__main__":
    asyncio.run(main())
