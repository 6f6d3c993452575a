"""The bare stack: the floor under sos-router's intake on this machine, measured in the same run.

One endpoint, `POST /v1/reports`, on the same server (uvicorn with uvloop and httptools) and the
same migrated schema, that validates a small JSON body and makes the inserts a new report needs —
report, audit event, deadline and step timers, first page, status link — in one transaction with
the raw driver (asyncpg, or sqlite3 through aiosqlite): no authentication, no routing, no ORM.
sos-router's intake figures are also given as ratios to it, so they hold on a noisy machine.

    python -m bench.bare --database-url postgresql://… --staff-id ID --port 8100
"""

from __future__ import annotations

import argparse
import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel

REPORT = (
    "INSERT INTO reports (id, reference, category, channel, language, callback_phone, status,"
    " received_at, deadline_at, is_exhausted, attempt_base, contacts)"
    " VALUES ($1, $2, $3, 'app', $4, $5, 'open', $6, $7, false, 0, 1)"
)
EVENT = (
    "INSERT INTO audit_events (report_id, at, type, detail, data)"
    " VALUES ($1, $2, 'received', 'received', '{}')"
)
TIMER = (
    "INSERT INTO escalation_timers (report_id, kind, step_no, attempt_no, due_at, state, fence,"
    " created_at) VALUES ($1, $2, 1, 0, $3, 'pending', 0, $4)"
)
PAGE = (
    "INSERT INTO pages (report_id, step_no, attempt_no, target_no, tier_no, staff_id, channel,"
    " state, due_at, fence, tries, is_late, created_at)"
    " VALUES ($1, 1, 0, 0, 0, $2, 'chat', 'pending', $3, 0, 0, false, $4)"
)
LINK = "INSERT INTO status_tokens (token_hash, report_id, created_at) VALUES ($1, $2, $3)"


class Body(BaseModel):
    category: str
    callback_phone: str
    language: str = "nl"


def _rows(body: Body, staff_id: str) -> list[tuple[str, tuple[Any, ...]]]:
    now = datetime.now(UTC)
    rid = str(uuid.uuid4())
    return [
        (
            REPORT,
            (
                rid,
                secrets.token_hex(6),
                body.category,
                body.language,
                body.callback_phone,
                now,
                now + timedelta(minutes=10),
            ),
        ),
        (EVENT, (rid, now)),
        (TIMER, (rid, "deadline", now + timedelta(minutes=10), now)),
        (TIMER, (rid, "step", now + timedelta(seconds=60), now)),
        (PAGE, (rid, staff_id, now, now)),
        (LINK, (secrets.token_hex(32), rid, now)),
    ]


def postgres_app(dsn: str, staff_id: str) -> FastAPI:
    import asyncpg

    pool: Any = None

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        nonlocal pool
        pool = await asyncpg.create_pool(dsn, min_size=10, max_size=10)
        yield
        await pool.close()

    app = FastAPI(lifespan=lifespan)

    @app.post("/v1/reports", status_code=201)
    async def create(body: Body) -> dict[str, str]:
        rows = _rows(body, staff_id)
        async with pool.acquire() as conn, conn.transaction():
            for sql, args in rows:
                await conn.execute(sql, *args)
        return {"id": rows[0][1][0]}

    return app


def sqlite_app(path: str, staff_id: str) -> FastAPI:
    import asyncio

    import aiosqlite

    db: Any = None
    lock = asyncio.Lock()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        nonlocal db
        db = await aiosqlite.connect(path, isolation_level=None)
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=NORMAL")
        yield
        await db.close()

    app = FastAPI(lifespan=lifespan)

    @app.post("/v1/reports", status_code=201)
    async def create(body: Body) -> dict[str, str]:
        rows = _rows(body, staff_id)
        async with lock:
            await db.execute("BEGIN IMMEDIATE")
            try:
                for sql, args in rows:
                    qmarks = sql
                    for n in range(len(args), 0, -1):
                        qmarks = qmarks.replace(f"${n}", "?")
                    await db.execute(
                        qmarks, [a.isoformat() if isinstance(a, datetime) else a for a in args]
                    )
                await db.execute("COMMIT")
            except BaseException:
                # Also when the client went away mid-request: never leave the transaction open.
                await asyncio.shield(db.execute("ROLLBACK"))
                raise
        return {"id": rows[0][1][0]}

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--staff-id", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    url: str = args.database_url
    if url.startswith("sqlite"):
        app = sqlite_app(url.split(":///", 1)[1], args.staff_id)
    else:
        app = postgres_app(url.replace("+asyncpg", ""), args.staff_id)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
