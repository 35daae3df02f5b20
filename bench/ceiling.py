"""The framework's ceiling for `bench.intake`: Starlette alone, one route that parses a JSON body
and answers 201 with JSON, served exactly as `mazkira serve` serves the console.

`python -m bench.ceiling --port P`
"""

from __future__ import annotations

import argparse
import uuid

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from console.cli import serve


async def form(request: Request) -> JSONResponse:
    fields = await request.json()
    body = {"lead_id": str(uuid.uuid4()), "contact_id": str(uuid.uuid4()), "duplicate": False}
    return JSONResponse(body if isinstance(fields, dict) else {}, status_code=201)


app = Starlette(routes=[Route("/intake/{business_slug}/form", form, methods=["POST"])])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    serve("bench.ceiling:app", host=args.host, port=args.port)
