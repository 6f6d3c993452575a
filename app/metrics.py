"""Prometheus metrics (`GET /metrics`, the `prometheus_client` text format).

Two sources, because several processes share one database:

- **Facts about the data** are read from the database when scraped, so every process shows the
  same figures: scrape any one process for them, never sum them across processes. One scrape runs
  five queries (cached for `cache_seconds`), bounded by open work and by `WINDOW`, not by the
  years of history a bank keeps:
  1. counters over all reports: received by channel and category, promise verdicts, met. A plain
     grouped count, the one full pass; `rate()` and `increase()` make any window of them;
  2. the last `WINDOW` of reports, found through `ix_reports_received_at`: their time to
     acceptance (a gauge histogram), the share that kept the promise, and their pages by channel
     and state (joined through the pages' `report_id` key);
  3. queue depths, each a count over a partial index on `state` (`ix_pages_due`,
     `ix_pages_unknown_due`, `ix_escalation_timers_due`, `ix_escalation_timers_lease`,
     `ix_outbound_messages_due`): with 100,000 open escalations that is 100,000 index entries,
     never the done and canceled rows beside them;
  4. the pumping breakers open now, by scope (`number`, `prefix`, `global`: never a number);
  5. the escalation auditor's heartbeat row: its last beat (the age is taken at collection), and
     what all its runs found and repaired, by kind (totals it keeps in that row).
  Figures needing time arithmetic per row (time to acceptance) stay inside the window: measured on
  300,000 reports, that arithmetic made a full pass three times slower than a plain count.
- **Events in this process** (how late each timer fires, how late each page is dispatched, 5xx
  responses) are observed where they happen; they are per process, so sum them across processes.

`Metrics` is the engine's `Observer` (`routing/engine/engine.py`): the domain reports through that
protocol and never imports this library.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeHistogramMetricFamily,
    GaugeMetricFamily,
    Metric,
)
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import ColumnElement, case, extract, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from routing.clock import Clock
from routing.engine import auditor
from routing.notify.models import OutboundMessage
from routing.page.models import EscalationTimer, Page
from routing.pumping import service as pumping
from routing.report.models import Report

log = logging.getLogger(__name__)

# Timer and dispatch lateness, from on time (a claim takes a millisecond or two) to the 10 s at
# which a step is clearly stuck.
LATENESS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Time to acceptance, seconds to half an hour; the promise (600 s) is an edge, so the `le="600.0"`
# bucket counts the reports someone accepted in time.
ACK_BUCKETS = (10.0, 30.0, 60.0, 120.0, 180.0, 300.0, 420.0, 540.0, 600.0, 900.0, 1200.0, 1800.0)
# The recent reports the gauges describe: long enough to hold a few reports at a quiet bank,
# short enough that even a wave of them stays a cheap index range.
WINDOW = timedelta(hours=24)


@dataclass
class Snapshot:
    """The database's figures at one scrape."""

    reports: dict[tuple[str, str], int] = field(default_factory=dict)  # (channel, category)
    decided: int = 0  # all time
    met: int = 0
    recent_decided: int = 0  # within WINDOW
    recent_met: int = 0
    acknowledged: int = 0
    ack_seconds: float = 0.0
    ack_buckets: list[int] = field(default_factory=lambda: [0] * len(ACK_BUCKETS))
    pages: dict[tuple[str, str], int] = field(default_factory=dict)  # (channel, state)
    queues: dict[str, int] = field(default_factory=dict)
    breakers: dict[str, int] = field(default_factory=dict)  # open now, by scope
    auditor: auditor.Beat = field(default_factory=lambda: auditor.Beat(None, {}))


def _seconds(later: Any, earlier: Any, dialect: str) -> ColumnElement[Any]:
    """`later - earlier` in seconds, in SQL. SQLite keeps timestamps as text: julianday gives
    days as a float, rounded to the millisecond so that 600.000 s stays in the 600 s bucket."""
    if dialect == "sqlite":
        return func.round((func.julianday(later) - func.julianday(earlier)) * 86400.0, 3)
    return extract("epoch", later - earlier)


def _count(model: Any, *where: ColumnElement[bool]) -> Any:
    return select(func.count()).select_from(model).where(*where).scalar_subquery()


async def read_snapshot(session: AsyncSession, *, now: datetime) -> Snapshot:
    snap = Snapshot()
    totals = await session.execute(
        select(Report.channel, Report.category, Report.sla_met, func.count()).group_by(
            Report.channel, Report.category, Report.sla_met
        )
    )
    for channel, category, met, count in totals:
        snap.reports[(channel, category)] = snap.reports.get((channel, category), 0) + count
        snap.decided += count if met is not None else 0
        snap.met += count if met else 0

    recent = Report.received_at >= now - WINDOW
    waited = _seconds(Report.acknowledged_at, Report.received_at, session.get_bind().dialect.name)
    # The first bucket each report fits (one CASE per row); -1: not accepted.
    bucket = case(
        (Report.acknowledged_at.is_(None), -1),
        *((waited <= edge, i) for i, edge in enumerate(ACK_BUCKETS)),
        else_=len(ACK_BUCKETS),
    )
    window = await session.execute(
        select(Report.sla_met, bucket, func.count(), func.sum(waited))
        .where(recent)
        .group_by(Report.sla_met, bucket)
    )
    for met, first_bucket, count, seconds in window:
        snap.recent_decided += count if met is not None else 0
        snap.recent_met += count if met else 0
        if first_bucket >= 0:
            snap.acknowledged += count
            snap.ack_seconds += float(seconds)
            for i in range(first_bucket, len(ACK_BUCKETS)):  # buckets are cumulative
                snap.ack_buckets[i] += count
    pages = await session.execute(
        select(Page.channel, Page.state, func.count())
        .join(Report, Report.id == Page.report_id)
        .where(recent)
        .group_by(Page.channel, Page.state)
    )
    snap.pages = {(channel, state): count for channel, state, count in pages}

    queues = await session.execute(
        select(
            _count(Page, Page.state == "pending", Page.due_at <= now).label("pages_due"),
            _count(EscalationTimer, EscalationTimer.state == "pending").label("timers_pending"),
            _count(EscalationTimer, EscalationTimer.state == "leased").label("timers_leased"),
            _count(Page, Page.state == "unknown").label("pages_unknown"),
            _count(OutboundMessage, OutboundMessage.state == "pending").label("texts_pending"),
        )
    )
    snap.queues = dict(queues.one()._mapping)
    snap.breakers = await pumping.open_by_scope(session, now)
    snap.auditor = await auditor.read_beat(session)
    return snap


class DatabaseFigures(Collector):
    """A collector over the last `Snapshot`. `refresh()` (async) reads the database at most once
    per `cache_seconds`; `collect()` (called synchronously by `prometheus_client`) only reports."""

    def __init__(
        self,
        db: async_sessionmaker[AsyncSession],
        clock: Clock,
        *,
        cache_seconds: float = 2.0,
        timeout: float = 2.0,
    ) -> None:
        self.db = db
        self.clock = clock
        self.cache_seconds = cache_seconds
        self.timeout = timeout
        self.snapshot: Snapshot | None = None
        self._read_at = -math.inf
        self._lock = asyncio.Lock()

    async def refresh(self) -> None:
        async with self._lock:  # concurrent scrapes share one read
            if time.monotonic() - self._read_at < self.cache_seconds:
                return
            try:
                async with self.db() as session:
                    self.snapshot = await asyncio.wait_for(
                        read_snapshot(session, now=self.clock.now()), self.timeout
                    )
            except Exception as exc:
                # The scrape still answers (with sos_database_up 0): a metrics endpoint that
                # fails with the database would hide the process's own figures too.
                log.warning("metrics: could not read the database: %s", type(exc).__name__)
                self.snapshot = None
            self._read_at = time.monotonic()

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily(
            "sos_database_up", "1 if this scrape read the figures below from the database"
        )
        up.add_metric([], 0 if self.snapshot is None else 1)
        yield up
        if self.snapshot is not None:
            yield from self._families(self.snapshot)
            yield from self._watchers(self.snapshot, self.clock.now())

    @staticmethod
    def _watchers(snap: Snapshot, now: datetime) -> Iterable[Metric]:
        """What watches the service: the pumping breakers and the escalation auditor."""
        breakers = GaugeMetricFamily(
            "sos_pumping_breakers_open",
            "Pumping breakers open now, by scope: customer texts and calls in that scope are "
            "stopped (staff paging goes on)",
            labels=["scope"],
        )
        for scope, count in sorted(snap.breakers.items()):
            breakers.add_metric([scope], count)
        yield breakers
        beat = snap.auditor
        yield GaugeMetricFamily(
            "sos_auditor_heartbeat_age_seconds",
            "Seconds since the escalation auditor last finished a run (+Inf: it never did)",
            value=math.inf if beat.beat_at is None else (now - beat.beat_at).total_seconds(),
        )
        for name, what, counts in (
            ("sos_auditor_found", "found", beat.found_total),
            ("sos_auditor_repaired", "repaired", beat.repaired_total),
        ):
            family = CounterMetricFamily(
                name,
                f"Rows the escalation auditor {what}, by kind: lost escalations, stuck timers, "
                "pages and texts (all its runs, every engine)",
                labels=["kind"],
            )
            for kind, count in counts.items():
                family.add_metric([kind], count)
            yield family

    @staticmethod
    def _families(snap: Snapshot) -> Iterable[Metric]:
        reports = CounterMetricFamily(
            "sos_reports",
            "Reports received (one per case), by intake channel and category",
            labels=["channel", "category"],
        )
        for (channel, category), count in sorted(snap.reports.items()):
            reports.add_metric([channel, category], count)
        yield reports
        yield CounterMetricFamily(
            "sos_promise_decided", "Reports with a verdict on the promise", value=snap.decided
        )
        yield CounterMetricFamily(
            "sos_promise_met", "Reports a human accepted within the promise", value=snap.met
        )
        yield GaugeMetricFamily(
            "sos_promise_met_ratio",
            "Met / decided among the reports received in the last 24 h (NaN: none decided); "
            "for another window, increase(sos_promise_met_total) / "
            "increase(sos_promise_decided_total)",
            value=snap.recent_met / snap.recent_decided if snap.recent_decided else math.nan,
        )
        edges = [str(edge) for edge in ACK_BUCKETS]  # "600.0", as Histogram writes its edges
        yield GaugeHistogramMetricFamily(
            "sos_time_to_ack_seconds",
            "Reports received in the last 24 h and accepted, by time from arrival to acceptance "
            "(it follows the window: use histogram_quantile() on it directly, not on rate())",
            buckets=[
                *zip(edges, map(float, snap.ack_buckets), strict=True),
                ("+Inf", float(snap.acknowledged)),
            ],
            gsum_value=snap.ack_seconds,
        )
        pages = GaugeMetricFamily(
            "sos_pages",
            "Pages for the reports received in the last 24 h, by channel and state",
            labels=["channel", "state"],
        )
        for (channel, state), count in sorted(snap.pages.items()):
            pages.add_metric([channel, state], count)
        yield pages
        queues = GaugeMetricFamily(
            "sos_queue_depth",
            "Rows waiting now: pages due, escalation timers pending and leased, pages whose "
            "outcome is unknown, customer texts pending",
            labels=["queue"],
        )
        for queue, depth in snap.queues.items():
            queues.add_metric([queue], depth)
        yield queues


class Metrics:
    """This process's registry: the database figures plus what the engine and the HTTP layer
    observe here. Implements `routing.engine.engine.Observer`."""

    def __init__(self, db: async_sessionmaker[AsyncSession], clock: Clock) -> None:
        self.registry = CollectorRegistry()
        self.timer_lateness = Histogram(
            "sos_timer_lateness_seconds",
            "How long after its due time an escalation timer fired, by timer kind",
            ["kind"],
            buckets=LATENESS_BUCKETS,
            registry=self.registry,
        )
        self.dispatch_lateness = Histogram(
            "sos_page_dispatch_lateness_seconds",
            "How long after its due time a page was taken for sending, by channel",
            ["channel"],
            buckets=LATENESS_BUCKETS,
            registry=self.registry,
        )
        self.server_errors = Counter(
            "sos_http_server_errors",
            "HTTP responses with a 5xx status (503: database unavailable; 500: a bug)",
            ["status"],
            registry=self.registry,
        )
        self.database = DatabaseFigures(db, clock)
        self.registry.register(self.database)
        ProcessCollector(registry=self.registry)

    def timer_fired(self, kind: str, lateness_seconds: float) -> None:
        self.timer_lateness.labels(kind).observe(max(lateness_seconds, 0.0))

    def page_dispatched(self, channel: str, seconds_after_due: float) -> None:
        self.dispatch_lateness.labels(str(channel)).observe(max(seconds_after_due, 0.0))

    async def exposition(self) -> bytes:
        await self.database.refresh()
        return generate_latest(self.registry)


class CountServerErrors:
    """ASGI middleware: counts 5xx responses, and exceptions that escape to become a 500."""

    def __init__(self, app: ASGIApp, *, counter: Counter) -> None:
        self.app = app
        self.counter = counter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def counting(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if message["status"] >= 500:
                    self.counter.labels(str(message["status"])).inc()
            await send(message)

        try:
            await self.app(scope, receive, counting)
        except Exception:
            if not started:
                self.counter.labels("500").inc()
            raise
