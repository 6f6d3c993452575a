"""Alembic migrations, on a database of their own: they go up and down cleanly, and they describe
exactly the schema the models declare (no drift between `routing.models` and `migrations/`).

SQLite: a fresh file per test. PostgreSQL (SOS_TEST_DATABASE_URL=postgresql...): a separate
database `<name>_migrations` on the same server, created for each test and dropped afterwards, so
the shared test database and its schema are never touched.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, make_url

from app import migrate
from app.db import create_engine
from routing.models import Base

MODEL_TABLES = set(Base.metadata.tables)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@pytest.fixture
async def migrations_url(tmp_path: Path) -> AsyncIterator[str]:
    base = os.environ.get("SOS_TEST_DATABASE_URL", "")
    if not base.startswith("postgresql"):
        yield f"sqlite+aiosqlite:///{tmp_path / 'migrations.db'}"
        return

    server = make_url(base)
    name = f"{server.database}_migrations"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f"DROP DATABASE IF EXISTS {_quote(name)} WITH (FORCE)"))
            await conn.execute(text(f"CREATE DATABASE {_quote(name)}"))
        try:
            yield server.set(database=name).render_as_string(hide_password=False)
        finally:
            async with admin.connect() as conn:
                await conn.execute(text(f"DROP DATABASE IF EXISTS {_quote(name)} WITH (FORCE)"))
    finally:
        await admin.dispose()


# `app.migrate.upgrade/downgrade` run Alembic's env, which calls asyncio.run: keep them in a thread,
# off this test's event loop.
async def _upgrade(url: str, revision: str = "head") -> None:
    await asyncio.to_thread(migrate.upgrade, url, revision)


async def _downgrade(url: str, revision: str) -> None:
    await asyncio.to_thread(migrate.downgrade, url, revision)


async def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            names = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
    finally:
        await engine.dispose()
    return set(names)


async def test_upgrade_downgrade_upgrade_round_trip(migrations_url: str) -> None:
    await _upgrade(migrations_url)
    tables = await _tables(migrations_url)
    assert tables >= MODEL_TABLES, f"missing after upgrade: {sorted(MODEL_TABLES - tables)}"
    assert await migrate.current_revision(migrations_url) is not None

    await _downgrade(migrations_url, "base")
    leftover = await _tables(migrations_url) & MODEL_TABLES
    assert not leftover, f"downgrade to base left tables behind: {sorted(leftover)}"
    assert await migrate.current_revision(migrations_url) is None

    await _upgrade(migrations_url)
    tables = await _tables(migrations_url)
    assert tables >= MODEL_TABLES, f"missing after re-upgrade: {sorted(MODEL_TABLES - tables)}"
    assert tables - MODEL_TABLES == {"alembic_version"}, "tables no model declares"


async def test_models_and_migrations_do_not_drift(migrations_url: str) -> None:
    await _upgrade(migrations_url)

    def diff(sync: Connection) -> list[Any]:
        context = MigrationContext.configure(sync, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))

    engine = create_engine(migrations_url)
    try:
        async with engine.connect() as conn:
            changes = await conn.run_sync(diff)
    finally:
        await engine.dispose()
    assert changes == [], (
        "the models and the migrations differ; add a migration "
        "(alembic revision --autogenerate) for:\n" + "\n".join(map(repr, changes))
    )
