"""`/healthz` tells the state of the database and of Redis."""

from __future__ import annotations

import httpx

from asgi import create_app
from console.base.config import Settings
from console.base.db import Database
from tests.conftest import SECRET


async def get_health(app: object) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return await client.get("/healthz")


async def test_database_up_and_redis_disabled(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"database": "ok", "redis": "disabled"}


async def test_redis_up_and_down(db: Database, redis_url: str, free_port: int) -> None:
    for url, expected in [(redis_url, "ok"), (f"redis://127.0.0.1:{free_port}/0", "down")]:
        app = create_app(Settings(database_url=db.url, secret_key=SECRET, redis_url=url), db=db)
        async with app.router.lifespan_context(app):
            response = await get_health(app)
        assert response.status_code == 200
        assert response.json() == {"database": "ok", "redis": expected}


async def test_database_down_answers_503(free_port: int) -> None:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port}/nothing"
    app = create_app(Settings(database_url=url, secret_key=SECRET), run_jobs=False)
    async with app.router.lifespan_context(app):
        response = await get_health(app)
    assert response.status_code == 503
    assert response.json() == {"database": "down", "redis": "disabled"}
