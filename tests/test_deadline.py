"""The request deadline (`app/deadline.py`): a request still waiting when it passes is answered
503 with `Retry-After`; an answer already on its way is never cut."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession

from app.container import Container
from app.deadline import RequestDeadline
from app.main import create_app
from tests.api.test_errors import assert_error
from tests.api.test_health_metrics import at, scrape

DEADLINE = 0.2


def _app() -> FastAPI:
    app = FastAPI()
    never = asyncio.Event()

    @app.get("/waits")
    async def waits() -> dict[str, str]:
        await never.wait()  # a database that never answers
        return {}

    @app.get("/quick")
    async def quick() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/streams")
    async def streams() -> StreamingResponse:
        async def body() -> AsyncIterator[bytes]:
            yield b"first "
            await asyncio.sleep(DEADLINE * 2)  # the answer had started: it may take its time
            yield b"last"

        return StreamingResponse(body())

    app.add_middleware(RequestDeadline, seconds=DEADLINE)
    return app


def _client(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://sos.test")


async def test_a_request_still_waiting_at_its_deadline_gets_503_with_retry_after() -> None:
    async with _client(_app()) as client:
        started = time.monotonic()
        r = await client.get("/waits")
        waited = time.monotonic() - started

    assert_error(r, 503, code="unavailable")
    assert r.headers["retry-after"] == "2"
    assert DEADLINE <= waited < DEADLINE + 1


async def test_answers_in_time_pass_untouched() -> None:
    async with _client(_app()) as client:
        r = await client.get("/quick")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


async def test_an_answer_on_its_way_is_not_cut() -> None:
    async with _client(_app()) as client:
        r = await client.get("/streams")
    assert r.status_code == 200
    assert r.text == "first last"


async def test_the_api_answers_503_while_it_waits_for_a_database_connection(
    container: Container,
) -> None:
    """Every connection taken (here: held by the test), the API's request waits for one; the
    deadline answers for it, counted like any other 503, with the security headers."""
    container.settings.limits.request_timeout_seconds = DEADLINE
    app = create_app(container, run_engine=False)
    held: list[AsyncSession] = []
    try:
        for _ in range(_pool_capacity(container)):
            session = container.db()
            await session.connection()
            held.append(session)
        async with _client(app) as client:
            started = time.monotonic()
            r = await client.get("/v1/staff", headers={"Authorization": "Bearer sos_whatever"})
            waited = time.monotonic() - started
            for session in held:
                await session.close()
            held = []
            counted = await scrape(client)
    finally:
        for session in held:
            await session.close()

    assert_error(r, 503, code="unavailable")
    assert waited < DEADLINE + 1  # not the pool's own, far longer, wait
    assert r.headers["retry-after"] == "2"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert counted[at("sos_http_server_errors_total", status="503")] == 1


def _pool_capacity(container: Container) -> int:
    pool = container.db_engine.pool
    return int(pool.size() + pool._max_overflow)  # type: ignore[attr-defined]
