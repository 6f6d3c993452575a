"""Database engine and session factory for PostgreSQL (asyncpg) and SQLite (aiosqlite).

On PostgreSQL every wait has a bound: opening a connection (`CONNECT_TIMEOUT`), a free pooled one
(`POOL_TIMEOUT`) and, where the caller gives a `statement_timeout` (the service does:
`SOS_DATABASE__STATEMENT_TIMEOUT_SECONDS`), each statement, commit and rollback. A statement
without an answer in time raises `TimeoutError` and its connection is closed, never returned to
the pool: its protocol state is unknown (the server may still be running the statement, or never
got it), and a blackholed socket would hang its next user too. The other pooled connections
stay: each finds out for itself.

SQLite runs in WAL mode with foreign keys on, on one pooled connection per process, and every
transaction starts with `BEGIN IMMEDIATE`, so a second process (a CLI command beside `serve`) waits
for the lock instead of failing halfway when it upgrades a read to a write.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

# Seconds to open a PostgreSQL connection, and to wait for a free pooled one.
CONNECT_TIMEOUT = 5
POOL_TIMEOUT = 10


def create_engine(
    url: str, *, statement_timeout: float | None = None, **kwargs: Any
) -> AsyncEngine:
    """An engine for `url`; on PostgreSQL, `statement_timeout` (seconds) bounds every statement
    (None: no bound, for tools whose statements may rightly run long, such as migrations)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        # No pre-ping: it costs a round trip per checkout. A connection that died with the server
        # fails its first statement, which invalidates the whole pool and answers 503 (app/errors).
        kwargs.setdefault("pool_size", 10)
        # A database that does not answer must cost a request seconds, then a 503: asyncpg would
        # wait 60 s for a connection, the pool 30 s for a free one, a statement forever.
        kwargs.setdefault(
            "connect_args", {"timeout": CONNECT_TIMEOUT, "command_timeout": statement_timeout}
        )
        kwargs.setdefault("pool_timeout", POOL_TIMEOUT)
        engine = create_async_engine(url, **kwargs)
        event.listen(engine.sync_engine, "handle_error", _close_timed_out)
        return engine
    kwargs.setdefault("connect_args", {"timeout": 30})
    # SQLite has one writer. One pooled connection makes transactions queue on an asyncio-aware
    # pool instead of colliding on the file lock and sleeping in SQLite's busy handler, which
    # measured ~10x slower under load.
    kwargs.setdefault("pool_size", 1)
    kwargs.setdefault("max_overflow", 0)
    kwargs.setdefault("pool_timeout", 30)
    engine = create_async_engine(url, **kwargs)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when a transaction begins.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _close_timed_out(context: ExceptionContext) -> None:
    """A statement that got no answer in time (asyncpg's `command_timeout`) leaves its
    connection in an unknown state: treat it as lost, so it is closed at once (no rollback over
    a silent network) and never handed out again. Only this connection: the others are fine, or
    time out on their own."""
    if isinstance(context.original_exception, TimeoutError):
        context.is_disconnect = True
        context.invalidate_pool_on_disconnect = False


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
