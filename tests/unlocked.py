"""Getting past the audit log's append-only triggers, as only a database superuser or whoever holds
the SQLite file can: to empty the tables between tests, and in tests that tamper on purpose."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection


@asynccontextmanager
async def audit_unlocked(conn: AsyncConnection) -> AsyncIterator[None]:
    """Inside `conn`'s transaction, UPDATE, DELETE and TRUNCATE of the audit tables work."""
    if conn.dialect.name == "postgresql":
        # Ordinary triggers do not fire for a replica (superusers only; also skips FK checks).
        await conn.execute(text("SET LOCAL session_replication_role = replica"))
        yield
        return
    triggers = (
        await conn.execute(
            text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name LIKE :name"),
            {"name": "audit%"},
        )
    ).all()
    for name, _ in triggers:
        await conn.execute(text(f'DROP TRIGGER "{name}"'))
    yield
    for _, sql in triggers:
        await conn.execute(text(sql))
