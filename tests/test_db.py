"""The service's database engine bounds every statement: over a network that went silent, a
statement fails in time and its connection is closed, never handed out again."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.db import create_engine
from tests.faults.proxy import Proxy

pytestmark = pytest.mark.postgres

TIMEOUT = 0.5
PID = text("SELECT pg_backend_pid()")
CLOSE = 2.0  # closing a connection that got no answer may take this long (asyncpg's graceful close)


@pytest.fixture
def proxy(migrated: str) -> Iterator[Proxy]:
    port = make_url(migrated).port
    assert port is not None
    started = Proxy(port).start()
    try:
        yield started
    finally:
        started.stop()


async def test_a_statement_the_network_swallows_times_out_and_its_connection_is_closed(
    migrated: str, proxy: Proxy
) -> None:
    engine = create_engine(proxy.url(migrated), statement_timeout=TIMEOUT)
    try:
        async with engine.connect() as conn:
            before = (await conn.execute(PID)).scalar()

        proxy.blackhole()
        async with engine.connect() as conn:
            started = time.monotonic()
            with pytest.raises(TimeoutError):
                await conn.execute(text("SELECT 2"))
        assert time.monotonic() - started < TIMEOUT + CLOSE + 1

        proxy.heal()
        async with engine.connect() as conn:
            after = (await conn.execute(PID)).scalar()
        assert after != before, "the connection that timed out was handed out again"
    finally:
        await engine.dispose()


async def test_a_commit_the_network_swallows_times_out_too(migrated: str, proxy: Proxy) -> None:
    engine = create_engine(proxy.url(migrated), statement_timeout=TIMEOUT)
    try:
        async with engine.connect() as conn:
            transaction = await conn.begin()
            before = (await conn.execute(PID)).scalar()
            proxy.blackhole()
            with pytest.raises(TimeoutError):
                await transaction.commit()
        proxy.heal()
        async with engine.connect() as conn:
            after = (await conn.execute(PID)).scalar()
        assert after != before, "the connection that timed out was handed out again"
    finally:
        await engine.dispose()


async def test_a_statement_that_runs_too_long_times_out_and_its_connection_is_closed(
    migrated: str,
) -> None:
    """A slow database rather than a silent network: the statement is cancelled in time, and
    its connection is not reused either (what state it is in is not worth guessing)."""
    engine = create_engine(migrated, statement_timeout=TIMEOUT)
    try:
        async with engine.connect() as conn:
            before = (await conn.execute(PID)).scalar()
            started = time.monotonic()
            with pytest.raises(TimeoutError):
                await conn.execute(text("SELECT pg_sleep(5)"))
        assert time.monotonic() - started < TIMEOUT + CLOSE + 1
        async with engine.connect() as conn:
            after = (await conn.execute(PID)).scalar()
        assert after != before, "the connection that timed out was handed out again"
    finally:
        await engine.dispose()
