"""The framework's ceiling: Starlette alone, served exactly as `mazkira serve` serves the console,
with one bare endpoint of the same shape for each figure of `bench.intake` and `bench.scale`:

- `POST /intake/{slug}/form` parses a JSON body and answers 201 with JSON;
- `GET /inbox` renders 50 rows from a query-less list into a page;
- `GET /leads/{id}` renders a lead's page (head, script, history) from query-less data;
- `GET /api/leads` answers 50 rows from a query-less list as JSON (the API's list of leads);
- `/ws` keeps sockets like the hub does (a bounded outbox and a sender per socket, grouped by
  the business their hello names), and `POST /broadcast?business=B` offers every socket of B one
  row fragment stamped with the time it was sent.

No database, no session, no middleware: what the console adds is everything above these.

`python -m bench.ceiling --port P`
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from jinja2 import Environment
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from console.cli import serve

TEMPLATES = Environment(autoescape=True)
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)

ROW = """<tr id="lead-{{ row.id }}" class="lead-row" data-business="{{ row.business_id }}">
  <td><bdi dir="ltr">{{ row.phone }}</bdi> {{ row.name }}</td><td>{{ row.business }}</td>
  <td>{{ row.channel }}</td><td>{{ row.stage }}</td><td>{{ row.subject }}</td>
  <td><time datetime="{{ row.created_at.isoformat() }}">
    {{ row.created_at.strftime('%H:%M') }}</time></td>
  <td>{{ row.holder or '' }}</td>
  <td><form method="post" action="/leads/{{ row.id }}/claim"><button>Claim</button></form></td>
</tr>"""
INBOX = TEMPLATES.from_string(
    """<!doctype html><html lang="he" dir="rtl"><head><title>Inbox ({{ rows|length }})</title>
<link rel="stylesheet" href="/static/app.css"></head><body><nav><a href="/inbox">Inbox</a></nav>
<main id="main"><form>{% for name, count in counts %}<a href="?stage={{ name }}">{{ name }}
({{ count }})</a>{% endfor %}</form><table><tbody id="queue">
{% for row in rows %}"""
    + ROW
    + """{% endfor %}</tbody></table></main></body></html>"""
)
LEAD = TEMPLATES.from_string(
    """<!doctype html><html lang="he" dir="rtl"><head><title>{{ lead.name }}</title></head><body>
<main id="main"><header id="lead-head"><h1>{{ lead.subject }}</h1><p>{{ lead.name }}
<bdi dir="ltr">{{ lead.phone }}</bdi> · {{ lead.business }} · {{ lead.stage }}</p></header>
<section id="script"><ol>{% for question in script %}<li><label>{{ question }}
<input name="answers.{{ loop.index }}"></label></li>{% endfor %}</ol></section>
<section id="call-log"><form method="post" action="/leads/{{ lead.id }}/notes">
<textarea name="notes"></textarea><button>Save</button></form></section>
<section id="history"><ul>{% for item in history %}<li><time>{{ item.at.isoformat() }}</time>
{{ item.kind }}: {{ item.text }}</li>{% endfor %}</ul></section></main></body></html>"""
)
BROADCAST_ROW = TEMPLATES.from_string(ROW)


def _rows() -> list[dict[str, Any]]:
    return [
        {
            "id": uuid.UUID(int=n),
            "business_id": uuid.UUID(int=10_000 + n % 10),
            "phone": f"+97252{n:07d}",
            "name": f"לקוח {n}",
            "business": f"עסק {n % 10}",
            "channel": "web",
            "stage": "new",
            "subject": "פנייה מהאתר",
            "created_at": NOW - timedelta(minutes=n),
            "holder": None,
        }
        for n in range(50)
    ]


ROWS = _rows()
COUNTS = [("new", 40), ("contacted", 10), ("web", 30), ("phone", 20)]
SCRIPT = [f"שאלה {n}?" for n in range(8)]
HISTORY = [
    {"at": NOW - timedelta(days=n), "kind": "note", "text": f"שיחה קודמת {n}"} for n in range(10)
]


async def form(request: Request) -> JSONResponse:
    fields = await request.json()
    body = {"lead_id": str(uuid.uuid4()), "contact_id": str(uuid.uuid4()), "duplicate": False}
    return JSONResponse(body if isinstance(fields, dict) else {}, status_code=201)


async def inbox(request: Request) -> HTMLResponse:
    return HTMLResponse(INBOX.render(rows=ROWS, counts=COUNTS))


async def lead(request: Request) -> HTMLResponse:
    row = {**ROWS[0], "id": request.path_params["lead_id"]}
    return HTMLResponse(LEAD.render(lead=row, script=SCRIPT, history=HISTORY))


def _json_row(row: dict[str, Any]) -> dict[str, Any]:
    return {
        **row,
        "id": str(row["id"]),
        "business_id": str(row["business_id"]),
        "created_at": row["created_at"].isoformat(),
    }


async def api_leads(request: Request) -> JSONResponse:
    return JSONResponse({"leads": [_json_row(row) for row in ROWS], "next": None})


class Sockets:
    """The hub's shape without its rules: a socket joins the group its hello names, and every
    socket of a group gets the group's messages."""

    def __init__(self) -> None:
        self.groups: dict[str, set[asyncio.Queue[str | None]]] = defaultdict(set)
        self.sent = 0


SOCKETS = Sockets()


async def live(websocket: WebSocket) -> None:
    await websocket.accept()
    outbox: asyncio.Queue[str | None] = asyncio.Queue(200)

    async def send() -> None:
        while (message := await outbox.get()) is not None:
            await websocket.send_text(message)

    sender = asyncio.create_task(send())
    group: set[asyncio.Queue[str | None]] = set()
    try:
        hello = json.loads(await websocket.receive_text())
        group = SOCKETS.groups[str(hello.get("business", ""))]
        group.add(outbox)
        while True:
            await websocket.receive_text()
    except WebSocketDisconnect:
        pass
    finally:
        group.discard(outbox)
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await sender


async def broadcast(request: Request) -> Response:
    """`POST /broadcast?business=B`: a stamped row to every socket of group B."""
    SOCKETS.sent += 1
    business = request.query_params.get("business", "")
    meta = json.dumps({"b": business, "s": SOCKETS.sent, "t": time.time()})
    html = f"<!--mz {meta}-->" + BROADCAST_ROW.render(row=ROWS[SOCKETS.sent % 50])
    for outbox in list(SOCKETS.groups.get(business, ())):
        with contextlib.suppress(asyncio.QueueFull):
            outbox.put_nowait(html)
    return Response(status_code=204)


app = Starlette(
    routes=[
        Route("/intake/{business_slug}/form", form, methods=["POST"]),
        Route("/inbox", inbox, methods=["GET"]),
        Route("/leads/{lead_id}", lead, methods=["GET"]),
        Route("/api/leads", api_leads, methods=["GET"]),
        Route("/broadcast", broadcast, methods=["POST"]),
        WebSocketRoute("/ws", live),
    ]
)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    serve("bench.ceiling:app", host=args.host, port=args.port)
