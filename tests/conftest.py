"""Test fixtures: one database per run (SQLite by default, PostgreSQL when SOS_TEST_DATABASE_URL is
set), schema from `alembic upgrade head`, every table emptied between tests.

Tests commit for real (the engine works across many transactions and, on PostgreSQL, across
connections), so isolation is by emptying tables rather than by rolling back one outer transaction.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event, text
from sqlalchemy.orm import Session

from app import logs, migrate
from app.container import Container, build
from app.db import create_engine
from app.main import create_app
from app.settings import Settings
from providers.fake import ScriptedSender
from routing import crypto
from routing.clock import FakeClock
from routing.crypto import KeyRing
from routing.models import Base
from routing.report.models import Report
from tests import keys
from tests.harness import Harness
from tests.unlocked import audit_unlocked

TEST_DATABASE_URL = os.environ.get("SOS_TEST_DATABASE_URL")
# Personal data is encrypted with the suite's fixed keys; tests that build no container (and so
# install no key ring) get the same ring here.
keys.use()
crypto.install(KeyRing.parse(keys.DATA_KEYS, keys.LOOKUP_KEY))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    del config
    if TEST_DATABASE_URL and TEST_DATABASE_URL.startswith("postgresql"):
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL: set SOS_TEST_DATABASE_URL")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    if TEST_DATABASE_URL:
        yield TEST_DATABASE_URL
        return
    with tempfile.TemporaryDirectory(prefix="sos-router-test-") as tmp:
        yield f"sqlite+aiosqlite:///{Path(tmp) / 'test.db'}"


@pytest.fixture(scope="session")
async def migrated(database_url: str) -> str:
    if database_url.startswith("postgresql"):
        engine = create_engine(database_url)
        async with engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
        await engine.dispose()
    await migrate.upgrade_async(database_url)
    return database_url


async def _empty_tables(url: str) -> None:
    engine = create_engine(url)
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    async with engine.begin() as conn, audit_unlocked(conn):
        if url.startswith("postgresql"):
            await conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for name in tables:
                await conn.execute(text(f"DELETE FROM {name}"))
    await engine.dispose()


# What must never reach a log line: a full E.164 number, an API token, the secret in an accept
# link or status page path, a bearer value.
LEAK = re.compile(
    r"\+\d{8,15}|sos_[A-Za-z0-9_-]{20,}|/(?:ack|status)/(?!\[redacted\])[A-Za-z0-9_-]{16,}"
    r"|Bearer (?!\[redacted\])\S+"
)
# Shorter descriptions ("later", "d") are words any log line might hold.
MIN_DESCRIPTION = 12


def find_leaks(lines: str, descriptions: list[str]) -> list[str]:
    """Personal data and secrets in JSON log `lines`: every line must be a JSON object, and no
    value may hold a `LEAK` or one of the report `descriptions`."""
    found = []
    for line in lines.splitlines():
        values = " ".join(str(v) for v in json.loads(line).values())
        found += LEAK.findall(values)
        found += [d for d in descriptions if len(d) >= MIN_DESCRIPTION and d in values]
    return found


@pytest.fixture(autouse=True)
def log_leaks() -> Iterator[list[str]]:
    """Log hygiene for every test: all records (INFO and up) go through the production JSON
    formatter and redaction filter, and the test fails if the output holds a phone number, a
    token or a description some report had during the test. Yields those descriptions."""
    out = io.StringIO()
    handler = logs.handler("json", out)
    root = logging.getLogger()
    level = root.level
    descriptions: list[str] = []

    def remember(_: Any, __: Any, report: Report) -> None:
        if report.description and report.description not in descriptions:
            descriptions.append(report.description)

    def written_on_the_driver(_: Any, instance: Any) -> None:
        # Intake inserts a new report on the driver connection and then adds it as loaded.
        if isinstance(instance, Report):
            remember(None, None, instance)

    event.listen(Report, "before_insert", remember)
    event.listen(Report, "before_update", remember)
    event.listen(Session, "detached_to_persistent", written_on_the_driver)
    root.addHandler(handler)
    root.setLevel(min(level, logging.INFO))
    try:
        yield descriptions
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        event.remove(Report, "before_insert", remember)
        event.remove(Report, "before_update", remember)
        event.remove(Session, "detached_to_persistent", written_on_the_driver)
    leaks = find_leaks(out.getvalue(), descriptions)
    assert not leaks, f"personal data or secrets in the log: {leaks}"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sender() -> Iterator[ScriptedSender]:
    fake = ScriptedSender()
    yield fake
    # GoAlert's rule: a page nobody expected is a failure, even if every assertion passed.
    fake.assert_no_more()


@pytest.fixture
def settings(migrated: str) -> Settings:
    return Settings(database_url=migrated, sla_seconds=600, seed_demo=False)


@pytest.fixture
async def clean_db(settings: Settings) -> None:
    await _empty_tables(settings.database_url)


@pytest.fixture
async def container(
    settings: Settings, clock: FakeClock, sender: ScriptedSender, clean_db: None
) -> AsyncIterator[Container]:
    del clean_db
    built = build(settings, clock=clock, senders=[sender], raise_errors=True)
    yield built
    await built.close()


@pytest.fixture
async def client(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(container, run_engine=False)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://sos.test") as c:
        yield c


@pytest.fixture
async def h(
    client: httpx.AsyncClient, container: Container, clock: FakeClock, sender: ScriptedSender
) -> Harness:
    harness = Harness(client, container, clock, sender)
    await harness.setup()
    return harness
