"""Fixtures of the fault-injection suite: one private PostgreSQL cluster per session (a database
per test, copied from a migrated template), a fake Twilio on loopback per test, and the test's
`serve`/`worker` processes, ended by pid when the test ends, however it ends.

On a failure, the tail of every process's log is attached to the report ("processes" section).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Generator, Iterator
from itertools import count
from pathlib import Path

import pytest

from app import migrate
from tests.faults.fake_twilio import FakeTwilio
from tests.faults.procs import Cluster, Processes
from tests.faults.site import Site

AUTH_TOKEN = "fault-suite-auth-token"
TEMPLATE = "sos_template"
# Short leases and reconcile times, so a killed process's work is taken over within seconds;
# no per-person SMS limit to speak of, so a burst of reports is paged as it comes.
FAST = {
    "SOS_ENGINE__PAGE_LEASE_SECONDS": "4",
    "SOS_ENGINE__SEND_TIMEOUT_SECONDS": "3",
    "SOS_ENGINE__TIMER_LEASE_SECONDS": "4",
    "SOS_ENGINE__RECONCILE_RETRY_SECONDS": "1",
    "SOS_ENGINE__RECONCILE_GIVE_UP_SECONDS": "2",
    "SOS_PAGING__MAX_SMS_PER_WINDOW": "100",
}
_databases = count(1)


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    pg = Cluster()
    try:
        pg.start()
        pg.sql(f"CREATE DATABASE {TEMPLATE}")
        migrate.upgrade(pg.url(TEMPLATE))
        yield pg
    finally:
        pg.destroy()


@pytest.fixture(scope="session")
def logs() -> Iterator[Path]:
    """Where the processes write their output (our own directory: pytest's shared temporary
    directories are pruned by whoever runs pytest next)."""
    path = Path(tempfile.mkdtemp(prefix="sos-faults-logs-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def database(cluster: Cluster) -> str:
    """A fresh, migrated database of the private cluster."""
    name = f"faults_{next(_databases)}"
    if not cluster.is_running:  # a test that crashed the cluster and failed before its restart
        cluster.start()
    cluster.sql(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    return cluster.url(name)


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    with FakeTwilio(AUTH_TOKEN) as fake:
        yield fake


@pytest.fixture
def procs(
    database: str, twilio: FakeTwilio, logs: Path, request: pytest.FixtureRequest
) -> Iterator[Processes]:
    workdir = logs / database.rsplit("/", 1)[1]
    workdir.mkdir()
    started = Processes(
        database_url=database,
        provider_url=twilio.url,
        auth_token=AUTH_TOKEN,
        workdir=workdir,
        env=FAST,
    )
    try:
        yield started
    finally:
        started.end_all()
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            for proc in started.started:
                request.node.add_report_section(
                    "teardown", f"process {proc.name} (pid {proc.pid})", proc.output()[-6000:]
                )


@pytest.fixture
async def site(database: str) -> AsyncIterator[Site]:
    reader = Site(database)
    yield reader
    await reader.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item,
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep the call phase's report on the test item, for the `procs` fixture's teardown."""
    report = yield
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]
    return report
