"""Self-monitoring: `/healthz`, `/readyz` (database, engine loop, senders) and `/metrics`
(Prometheus text), in the API and in a `sos-router worker --metrics-port`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import delete

from app.api import health
from app.container import Container, build
from app.main import create_app
from app.settings import Settings
from providers.base import Channel
from providers.fake import ScriptedSender
from providers.registry import ProviderRegistry
from routing.clock import FakeClock
from routing.page.models import EscalationTimer
from tests.harness import VOICE, Harness

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def serving(container: Container, *, run_engine: bool) -> AsyncIterator[httpx.AsyncClient]:
    """A client for an app over `container`; `run_engine` only says whether this process counts
    as running the engine (the test ticks it by hand)."""
    app = create_app(container, run_engine=run_engine)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://sos.test") as client:
        yield client


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a Prometheus text exposition, by (name, labels)."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def scrape(client: httpx.AsyncClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    r = await client.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return samples(r.text)


def at(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return name, frozenset(labels.items())


class TestHealthz:
    async def test_the_process_answers(self, client: httpx.AsyncClient) -> None:
        r = await client.get("/healthz")
        assert r.status_code == 200
        assert r.json() == {"status": "ok"}


class TestReadyz:
    async def test_ready_names_the_sender_of_each_channel(self, client: httpx.AsyncClient) -> None:
        r = await client.get("/readyz")

        assert r.status_code == 200, r.text
        body = r.json()
        assert body["status"] == "ok"
        assert body["failed"] == []
        assert body["checks"]["database"]["ok"] is True
        assert body["checks"]["engine"] == {"ok": True, "detail": "this process runs no engine"}
        assert body["checks"]["pumping"] == {
            "ok": True,
            "detail": "no breaker open",
            "breakers_open": 0,
            "by_scope": {"global": 0, "prefix": 0, "number": 0},
        }
        assert body["checks"]["providers"]["channels"] == {
            "voice": "fake",
            "sms": "fake",
            "chat": "fake",
        }

    @pytest.mark.parametrize(
        "unreachable",
        [
            "postgresql+asyncpg://postgres@127.0.0.1:{port}/nothing_listens_here",
            "sqlite+aiosqlite:///{missing}/no-such-dir/sos.db",
        ],
        ids=["closed port", "missing sqlite dir"],
    )
    async def test_unreachable_database_is_503_naming_it(
        self, unreachable: str, settings: Settings, clock: FakeClock, tmp_path: Path
    ) -> None:
        url = unreachable.format(port=free_port(), missing=tmp_path)
        container = build(settings.model_copy(update={"database_url": url}), clock=clock)
        try:
            async with serving(container, run_engine=False) as client:
                r = await client.get("/readyz")
        finally:
            await container.close()

        assert r.status_code == 503, r.text
        assert r.headers["retry-after"] == "5"
        assert r.json()["failed"] == ["database"]
        assert r.json()["checks"]["database"]["ok"] is False
        assert r.json()["checks"]["pumping"] == {
            "ok": True,  # information only, and not waited for on a database that failed
            "detail": "not read: the database does not answer",
            "breakers_open": None,
            "by_scope": {},
        }

    async def test_a_hung_database_fails_the_probe_within_its_timeout(
        self,
        settings: Settings,
        clock: FakeClock,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """A server that accepts the connection and never answers (a blackholed database)."""
        silent: list[asyncio.StreamWriter] = []

        async def accept(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            silent.append(writer)

        server = await asyncio.start_server(accept, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        url = f"postgresql+asyncpg://postgres@127.0.0.1:{port}/hangs"
        monkeypatch.setattr(health, "DB_TIMEOUT", 0.3)
        container = build(settings.model_copy(update={"database_url": url}), clock=clock)
        try:
            async with serving(container, run_engine=False) as client:
                started = time.monotonic()
                r = await client.get("/readyz")
                waited = time.monotonic() - started
        finally:
            await container.close()
            for writer in silent:
                writer.close()
            server.close()
            await server.wait_closed()

        assert r.status_code == 503, r.text
        assert r.json()["checks"]["database"]["detail"] == "no answer within 0.3 s"
        assert waited < 2

    async def test_an_engine_that_stopped_ticking_is_503(
        self, container: Container, clock: FakeClock
    ) -> None:
        async with serving(container, run_engine=True) as client:
            never = await client.get("/readyz")
            await container.engine.tick()
            ticking = await client.get("/readyz")
            clock.advance(health.ENGINE_STALE_AFTER + 1)
            stale = await client.get("/readyz")

        assert never.status_code == 503
        assert never.json()["failed"] == ["engine"]
        assert never.json()["checks"]["engine"]["detail"] == "the engine has not ticked yet"
        assert ticking.status_code == 200, ticking.text
        assert ticking.json()["checks"]["engine"]["last_tick_at"] == "2026-01-05T09:00:00+00:00"
        assert stale.status_code == 503
        assert stale.headers["retry-after"] == "5"
        assert stale.json()["failed"] == ["engine"]
        assert stale.json()["checks"]["engine"]["detail"] == "no tick for 16 s"

    async def test_no_sender_for_voice_or_sms_is_503(self, container: Container) -> None:
        chat_only = ScriptedSender()
        chat_only.channels = frozenset({Channel.CHAT})
        container.registry = ProviderRegistry([chat_only])
        async with serving(container, run_engine=False) as client:
            r = await client.get("/readyz")

        assert r.status_code == 503
        assert r.json()["failed"] == ["providers"]
        assert r.json()["checks"]["providers"] == {
            "ok": False,
            "detail": "no sender for voice, sms",
            "channels": {"chat": "fake"},
        }


async def three_reports_two_in_time(h: Harness) -> list[str]:
    """No chain: Anna accepts by hand. At T0 three reports arrive; she accepts the first after
    100 s and the second after 500 s. The engine next runs at 603 s: the third report's deadline
    timer (due at 600 s) fires 3 s late and records the miss. She accepts it at 700 s."""
    await h.staff("Anna")
    reports = [await h.report() for _ in range(3)]
    ids = [str(r["id"]) for r in reports]
    h.clock.advance(100)
    assert (await h.ack(ids[0], "Anna")).json()["sla"]["met"] is True
    h.clock.advance(400)
    assert (await h.ack(ids[1], "Anna")).json()["sla"]["met"] is True
    h.clock.advance(103)
    await h.tick()
    h.clock.advance(97)
    assert (await h.ack(ids[2], "Anna")).json()["sla"]["met"] is False
    await h.tick()
    h.expect_accepted_text(*reports, by="Anna")
    return ids


class TestMetrics:
    async def test_promise_reports_and_time_to_ack_come_from_the_database(self, h: Harness) -> None:
        await three_reports_two_in_time(h)

        got = await scrape(h.client)

        assert got[at("sos_database_up")] == 1
        assert got[at("sos_reports_total", channel="app", category="fraud")] == 3
        assert got[at("sos_promise_decided_total")] == 3
        assert got[at("sos_promise_met_total")] == 2
        assert got[at("sos_promise_met_ratio")] == pytest.approx(2 / 3)
        ack = "sos_time_to_ack_seconds_bucket"
        assert got[at(ack, le="60.0")] == 0
        assert got[at(ack, le="120.0")] == 1
        assert got[at(ack, le="540.0")] == 2
        assert got[at(ack, le="600.0")] == 2, "the promise is a bucket edge"
        assert got[at(ack, le="900.0")] == 3
        assert got[at(ack, le="+Inf")] == 3
        assert got[at("sos_time_to_ack_seconds_gcount")] == 3
        assert got[at("sos_time_to_ack_seconds_gsum")] == pytest.approx(100 + 500 + 700)

    async def test_time_to_ack_and_the_ratio_cover_the_last_day_and_the_counters_all_time(
        self, h: Harness
    ) -> None:
        h.container.metrics.database.cache_seconds = 0  # every scrape reads the database
        await three_reports_two_in_time(h)
        h.clock.advance(24 * 3600 - 700)  # the reports arrived exactly 24 h ago
        day = await scrape(h.client)
        h.clock.advance(1)
        later = await scrape(h.client)

        assert day[at("sos_time_to_ack_seconds_gcount")] == 3
        assert later[at("sos_time_to_ack_seconds_gcount")] == 0
        assert later[at("sos_time_to_ack_seconds_bucket", le="+Inf")] == 0
        assert math.isnan(later[at("sos_promise_met_ratio")])
        assert later[at("sos_reports_total", channel="app", category="fraud")] == 3
        assert later[at("sos_promise_decided_total")] == 3
        assert later[at("sos_promise_met_total")] == 2

    async def test_a_timer_fired_late_is_observed_in_its_bucket(self, h: Harness) -> None:
        await three_reports_two_in_time(h)

        got = await scrape(h.client)

        late = "sos_timer_lateness_seconds_bucket"
        assert got[at(late, kind="deadline", le="2.5")] == 0
        assert got[at(late, kind="deadline", le="5.0")] == 1, "3 s late"
        assert got[at("sos_timer_lateness_seconds_count", kind="deadline")] == 1
        assert got[at("sos_timer_lateness_seconds_sum", kind="deadline")] == pytest.approx(
            3, abs=0.01
        )

    async def test_pages_queues_and_dispatch_lateness(self, h: Harness) -> None:
        h.container.metrics.database.cache_seconds = 0  # every scrape reads the database
        await h.staff("Anna")
        await h.chain(("voice", ["Anna"], 60))
        await h.report()
        await h.route()  # step 1 routed: its page is due now

        before = await scrape(h.client)
        h.clock.advance(2)  # the engine gets to the first page 2 s after it fell due
        await h.tick()
        h.expect(("Anna", VOICE))
        after = await scrape(h.client)

        assert before[at("sos_queue_depth", queue="pages_due")] == 1
        assert before[at("sos_pages", channel="voice", state="pending")] == 1
        assert before[at("sos_queue_depth", queue="timers_pending")] == 2  # step and deadline
        assert after[at("sos_queue_depth", queue="pages_due")] == 0
        assert after[at("sos_pages", channel="voice", state="sent")] == 1
        assert at("sos_pages", channel="voice", state="pending") not in after
        for queue in ("timers_leased", "pages_unknown", "texts_pending"):
            assert after[at("sos_queue_depth", queue=queue)] == 0, queue
        dispatch = "sos_page_dispatch_lateness_seconds_bucket"
        assert after[at(dispatch, channel="voice", le="1.0")] == 0
        assert after[at(dispatch, channel="voice", le="2.5")] == 1

    async def test_database_figures_are_cached_between_close_scrapes(self, h: Harness) -> None:
        first = await scrape(h.client)
        await h.report()
        cached = await scrape(h.client)
        h.container.metrics.database.cache_seconds = 0
        fresh = await scrape(h.client)

        reports = at("sos_reports_total", channel="app", category="fraud")
        assert reports not in first
        assert reports not in cached
        assert fresh[reports] == 1

    async def test_without_a_database_the_process_figures_still_answer(
        self, settings: Settings, clock: FakeClock, tmp_path: Path
    ) -> None:
        url = f"sqlite+aiosqlite:///{tmp_path}/no-such-dir/sos.db"
        container = build(settings.model_copy(update={"database_url": url}), clock=clock)
        container.metrics.timer_fired("step", 0.004)
        try:
            async with serving(container, run_engine=False) as client:
                report = await client.post("/v1/reports", headers={"Authorization": "Bearer x"})
                got = await scrape(client)
        finally:
            await container.close()

        assert report.status_code == 503
        assert got[at("sos_database_up")] == 0
        assert at("sos_promise_met_ratio") not in got
        assert got[at("sos_timer_lateness_seconds_count", kind="step")] == 1
        assert got[at("sos_http_server_errors_total", status="503")] == 1

    async def test_unhandled_errors_are_counted(self, container: Container) -> None:
        app = create_app(container, run_engine=False)

        async def broken() -> None:
            raise RuntimeError("a bug")

        app.add_api_route("/broken", broken)
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://sos.test") as client:
            assert (await client.get("/broken")).status_code == 500
            assert (await client.get("/broken")).status_code == 500
            got = await scrape(client)

        assert got[at("sos_http_server_errors_total", status="500")] == 2

    async def test_the_auditors_findings_and_heartbeat_age(self, h: Harness) -> None:
        """The auditor finds a report whose timers are gone and repairs it: its counters say so
        (kind by kind, and they keep counting across runs), and its beat ages between runs."""
        h.container.metrics.database.cache_seconds = 0  # every scrape reads the database
        never = await scrape(h.client)
        await h.staff("Anna")
        await h.chain(("voice", ["Anna"], 600))
        report = await h.report()
        await h.tick()
        h.expect(("Anna", VOICE))
        clean = await scrape(h.client)
        async with h.container.db.begin() as session:
            await session.execute(
                delete(EscalationTimer).where(EscalationTimer.report_id == report["id"])
            )

        await h.advance(30)  # the auditor's next run finds it and restores its timers
        h.clock.advance(12)
        repaired = await scrape(h.client)
        await h.advance(18)  # the next run, 30 s after the last, finds nothing more
        later = await scrape(h.client)

        age = "sos_auditor_heartbeat_age_seconds"
        assert never[at(age)] == math.inf
        assert clean[at(age)] == 0
        assert repaired[at(age)] == 12
        for kind in ("lost_escalations", "stuck_timers", "stuck_pages", "stuck_texts"):
            assert never[at("sos_auditor_found_total", kind=kind)] == 0
            assert clean[at("sos_auditor_found_total", kind=kind)] == 0
        assert repaired[at("sos_auditor_found_total", kind="lost_escalations")] == 1
        assert repaired[at("sos_auditor_repaired_total", kind="lost_escalations")] == 1
        assert repaired[at("sos_auditor_found_total", kind="stuck_pages")] == 0
        assert later[at("sos_auditor_found_total", kind="lost_escalations")] == 1, "a counter"
        assert later[at(age)] == 0
        # What the heartbeat shows is the last run only.
        assert (await h.client.get("/heartbeat")).json()["auditor"]["findings"][
            "lost_escalations"
        ] == 0

    async def test_no_verdict_yet_gives_a_nan_ratio(self, client: httpx.AsyncClient) -> None:
        got = await scrape(client)

        assert math.isnan(got[at("sos_promise_met_ratio")])
        assert got[at("sos_promise_decided_total")] == 0


# --- a worker process with --metrics-port ---------------------------------------------------


def _env(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOS_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["SOS_DATABASE_URL"] = database_url
    return env


@pytest.fixture
def worker_db(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'worker.db'}"
    migrated = subprocess.run(
        [sys.executable, "-m", "app", "migrate"],
        env=_env(url),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert migrated.returncode == 0, migrated.stderr
    return url


@pytest.fixture
def worker_log(tmp_path: Path) -> Path:
    return tmp_path / "worker.err"


@pytest.fixture
def worker(worker_db: str, worker_log: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`sos-router worker --metrics-port`, stopped by its pid (SIGTERM, then SIGKILL)."""
    port = free_port()
    with worker_log.open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app", "worker", "--metrics-port", str(port)],
            env=_env(worker_db),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        yield proc, f"http://127.0.0.1:{port}"
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/readyz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def test_a_worker_serves_probes_and_metrics_and_logs_json(
    worker: tuple[subprocess.Popen[bytes], str], worker_log: Path
) -> None:
    proc, base = worker
    deadline = time.monotonic() + 20
    while not _ready(base):
        assert proc.poll() is None, worker_log.read_text()
        assert time.monotonic() < deadline, f"not ready within 20 s:\n{worker_log.read_text()}"
        time.sleep(0.2)

    ready = httpx.get(f"{base}/readyz", timeout=5).json()
    metrics = samples(httpx.get(f"{base}/metrics", timeout=5).text)
    assert httpx.get(f"{base}/v1/reports", timeout=5).status_code == 404, "monitoring only"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) in (0, -signal.SIGTERM), worker_log.read_text()

    assert ready["checks"]["engine"]["detail"] == "ticking"
    assert ready["checks"]["providers"]["channels"]["voice"] == "simulated"
    assert metrics[at("sos_database_up")] == 1
    lines = [json.loads(line) for line in worker_log.read_text().splitlines()]
    assert any(line["msg"].startswith("engine running") for line in lines), lines
    assert all({"ts", "level", "logger", "msg"} <= set(line) for line in lines)
    assert not any("exc" in line for line in lines), lines
