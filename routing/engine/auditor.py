"""The escalation auditor: an independent check that every open report still has its next action
and that nothing the engine claims sits stuck. A bug, a crashed worker, a stuck transaction or a
wrong row would otherwise go unnoticed until a customer complains.

Every `interval` it looks, with a `slack` beyond normal claim latency, for

- escalation timers pending past their due time, or leased past their lease (or with none);
- pages and texts pending past their due time, or `sending` past their lease (or with none,
  outside a bundle: a page riding in a bundle follows its carrier and has no lease of its own);
- open reports without a timer they need: the `deadline` timer while the promise is undecided, a
  `step` or `start` timer while the chain still has somewhere to go. Without them nothing would
  ever page again, nor record the broken promise.

It repairs what is safe to repair (`routing.engine.repair`, with the engine's own functions) and
leaves an `audit_repair` event on each report it touched. A row that is overdue but that nobody
holds a lease on (a stuck transaction holds its lock, or the module that should take it keeps
failing) can only be reported.

The operators hear about it in one text per run (SMS and/or chat, through the outbox and the
content guard): counts and report references only, and each kind of finding at most once per
`mute_seconds`. Without an operators' contact the auditor logs at ERROR.

One engine audits at a time: a run is claimed by moving the `heartbeats` row's `due_at`, under a
transaction-level advisory lock on PostgreSQL (SQLite has one writer anyway), so two workers never
both repair and alert. A healthy run is that one transaction. The beat is written when the run is
over, so an auditor that fails, or an engine that stopped, shows as a stale heartbeat.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, ScalarSelect, and_, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from routing.chain import planner
from routing.engine import repair
from routing.engine.models import Heartbeat, next_run
from routing.notify import outbox, texts
from routing.notify.models import OutboundMessage
from routing.notify.outbox import Contact
from routing.page.models import EscalationTimer as Timer
from routing.page.models import Page
from routing.report.models import Report
from routing.types import ReportStatus

log = logging.getLogger(__name__)

NAME = "auditor"
# The key of the auditor's advisory lock: "sos-audi" as a 64-bit number.
LOCK_KEY = int.from_bytes(b"sos-audi", "big")

LOST = "lost_escalations"
TIMERS = "stuck_timers"
PAGES = "stuck_pages"
TEXTS = "stuck_texts"
KINDS = (LOST, TIMERS, PAGES, TEXTS)
# An alert names at most this many report references.
REFERENCES_SHOWN = 10


@dataclass(frozen=True, slots=True)
class Beat:
    """The auditor's last completed run, as `GET /heartbeat` shows it, and what all its runs
    found and repaired, by kind (the counters `GET /metrics` shows)."""

    beat_at: datetime | None
    findings: dict[str, int]
    found_total: dict[str, int] = field(default_factory=dict)
    repaired_total: dict[str, int] = field(default_factory=dict)


@dataclass
class _Suspects:
    """What one look found, before anything is repaired (rows of the queries in `_look`)."""

    timers: Sequence[Any] = ()
    pages: Sequence[Any] = ()
    texts: Sequence[Any] = ()
    reports: Sequence[str] = ()

    def __bool__(self) -> bool:
        return bool(self.timers or self.pages or self.texts or self.reports)


@dataclass
class Findings:
    """What one run found, by kind: how many rows, how many it repaired, which reports."""

    found: Counter[str] = field(default_factory=Counter)
    repaired: Counter[str] = field(default_factory=Counter)
    reports: defaultdict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    def add(self, kind: str, report_id: str | None, *, repaired: bool) -> None:
        self.found[kind] += 1
        self.repaired[kind] += repaired
        if report_id is not None:
            self.reports[kind].add(report_id)

    def summary(self) -> str:
        return ", ".join(
            f"{kind} {self.found[kind]} ({self.repaired[kind]} repaired)"
            for kind in KINDS
            if self.found[kind]
        )


class Auditor:
    name = NAME

    def __init__(
        self,
        *,
        interval_seconds: float = 30,
        slack_seconds: float = 30,
        prebreach_seconds: int | None = None,
        operators: Sequence[Contact] = (),
        language: str = "nl",
        mute_seconds: float = 900,
        batch: int = 100,
    ) -> None:
        """`prebreach_seconds`: as intake uses it, to re-arm a lost pre-breach timer;
        `operators`: who gets the alert; `mute_seconds`: how long one kind of finding is not
        alerted again."""
        self.interval = timedelta(seconds=interval_seconds)
        self.slack = timedelta(seconds=slack_seconds)
        self.prebreach = None if prebreach_seconds is None else timedelta(seconds=prebreach_seconds)
        self.operators = tuple(operators)
        self.language = language
        self.mute = timedelta(seconds=mute_seconds)
        self.batch = batch

    def due(self) -> Sequence[ScalarSelect[Any]]:
        return [next_run(NAME)]

    async def run_once(self, db: async_sessionmaker[AsyncSession], now: datetime) -> int:
        async with db.begin() as session:
            previous = await self._claim(session, now)
            if previous is None:
                return 0  # another engine audits, or just did
            # After a pause (no beat for two intervals: the engine was down or just started)
            # the engine first works off its backlog; lateness is judged from the next run on.
            judge = previous.beat_at is not None and now - previous.beat_at <= 2 * self.interval
            suspects = await self._look(session, now, judge_lateness=judge)
            if not suspects:
                await self._beat(session, now, Findings())
                return 0
        findings = await self._repair(db, suspects, now)
        async with db.begin() as session:
            alerts = await self._beat(session, now, findings)
        return sum(findings.repaired.values()) + alerts

    async def _claim(self, session: AsyncSession, now: datetime) -> Beat | None:
        """Take this run: move the due row one interval on. Returns the previous beat, or None
        when another engine holds the lock or already ran."""
        if not await singleton(session, LOCK_KEY):
            return None
        row = await session.get(Heartbeat, NAME, populate_existing=True)
        if row is None:
            session.add(Heartbeat(name=NAME, due_at=now + self.interval, detail={}))
            return Beat(None, {})
        if row.due_at > now:
            return None
        row.due_at = now + self.interval
        return Beat(row.beat_at, dict(row.detail))

    # --- looking ------------------------------------------------------------------------------

    async def _look(
        self, session: AsyncSession, now: datetime, *, judge_lateness: bool
    ) -> _Suspects:
        """Read-only: the stuck rows (when lateness is judged) and the reports that lost their
        escalation."""
        found = _Suspects(reports=await self._lost_reports(session))
        if not judge_lateness:
            return found
        cutoff = now - self.slack
        found.timers = (
            await session.execute(
                select(Timer.id, Timer.report_id, Timer.kind, Timer.state, Timer.fence)
                .where(
                    or_(
                        and_(Timer.state == "pending", Timer.due_at < cutoff),
                        and_(
                            Timer.state == "leased",
                            func.coalesce(Timer.lease_until, Timer.due_at) < cutoff,
                        ),
                    )
                )
                .order_by(Timer.due_at)
                .limit(self.batch)
            )
        ).all()
        found.pages = await self._stuck_sends(session, Page, _page_lost(cutoff), cutoff)
        found.texts = await self._stuck_sends(session, OutboundMessage, _text_lost(cutoff), cutoff)
        return found

    async def _stuck_sends(
        self,
        session: AsyncSession,
        model: type[Page] | type[OutboundMessage],
        lost: ColumnElement[bool],
        cutoff: datetime,
    ) -> Sequence[Any]:
        """Pages or texts overdue in `pending`, or lost in `sending`."""
        return (
            await session.execute(
                select(model.id, model.report_id, model.state, model.fence)
                .where(
                    or_(
                        and_(model.state == "pending", model.due_at < cutoff),
                        and_(model.state == "sending", lost),
                    )
                )
                .order_by(model.id)
                .limit(self.batch)
            )
        ).all()

    async def _lost_reports(self, session: AsyncSession) -> list[str]:
        """Open reports missing their deadline timer, or their step or start timer while the
        chain has steps and is not exhausted (newest first)."""
        rows = (
            await session.execute(
                select(
                    Report.id,
                    Report.chain,
                    Report.attempt_base,
                    Report.sla_met,
                    Report.is_exhausted,
                    repair.has_live_timer("deadline").label("has_deadline"),
                    repair.has_live_timer(*repair.MOVES_ON).label("has_step"),
                )
                .where(
                    Report.acknowledged_at.is_(None),
                    Report.status != ReportStatus.RESOLVED,
                    or_(
                        and_(Report.sla_met.is_(None), ~repair.has_live_timer("deadline")),
                        and_(
                            Report.is_exhausted.is_(False),
                            ~repair.has_live_timer(*repair.MOVES_ON),
                        ),
                    ),
                )
                .order_by(Report.received_at.desc())
                .limit(self.batch)
            )
        ).all()
        # A report without a chain has nothing to page: only its deadline can be lost.
        return [
            row.id
            for row in rows
            if (row.sla_met is None and not row.has_deadline)
            or (
                not row.is_exhausted
                and not row.has_step
                and planner.first_step(row.chain, row.attempt_base) is not None
            )
        ]

    # --- repairing ----------------------------------------------------------------------------

    async def _repair(
        self, db: async_sessionmaker[AsyncSession], suspects: _Suspects, now: datetime
    ) -> Findings:
        """Each repair in its own transaction (`routing.engine.repair`); a row that changed since
        the look is left alone."""
        findings = Findings()
        for t in suspects.timers:
            released = False
            if t.state == "leased":
                async with db.begin() as session:
                    released = await repair.release_timer(
                        session, report_id=t.report_id, timer_id=t.id, fence=t.fence, now=now
                    )
            findings.add(TIMERS, t.report_id, repaired=released)
        sends: list[tuple[str, type[Page] | type[OutboundMessage], Any]] = [
            (PAGES, Page, r) for r in suspects.pages
        ]
        sends += [(TEXTS, OutboundMessage, r) for r in suspects.texts]
        for kind, model, r in sends:
            unknown = False
            if r.state == "sending":
                async with db.begin() as session:
                    unknown = await repair.send_unknown(
                        session, model, row_id=r.id, report_id=r.report_id, fence=r.fence, now=now
                    )
            findings.add(kind, r.report_id, repaired=unknown)
        for report_id in suspects.reports:
            async with db.begin() as session:
                restored = await repair.restore_escalation(
                    session, report_id=report_id, prebreach=self.prebreach, now=now
                )
            if restored:
                findings.add(LOST, report_id, repaired=True)
        return findings

    # --- the beat and the alert -----------------------------------------------------------------

    async def _beat(self, session: AsyncSession, now: datetime, findings: Findings) -> int:
        """Record the beat, and tell the operators about every kind of finding they have not
        heard about in the last `mute`. Returns how many alert texts were queued."""
        row = await session.get(Heartbeat, NAME, populate_existing=True)
        if row is None:  # the table was emptied during the run
            row = Heartbeat(name=NAME, due_at=now + self.interval, detail={})
            session.add(row)
        alerted: dict[str, str] = dict(row.detail.get("alerted_at", {}))
        fresh = [
            kind
            for kind in KINDS
            if findings.found[kind]
            and (kind not in alerted or now - datetime.fromisoformat(alerted[kind]) >= self.mute)
        ]
        if findings.found and not self.operators:
            log.error("escalation auditor: %s; no operators' contact set", findings.summary())
        elif findings.found:
            told = "operators alerted" if fresh else "operators already alerted"
            log.warning("escalation auditor: %s; %s", findings.summary(), told)
        queued = 0
        if fresh and self.operators:
            queued = await self._alert(session, now, findings, fresh)
            alerted.update({kind: now.isoformat() for kind in fresh})
        totals = row.detail.get("totals", {})
        row.beat_at = now
        row.detail = {
            "findings": {kind: findings.found[kind] for kind in KINDS},
            "repaired": {kind: findings.repaired[kind] for kind in KINDS},
            "alerted_at": alerted,
            # Every run's counts added up: they only grow (until the table is emptied), so a
            # scraper can take `increase()` of them without missing a run between scrapes.
            "totals": {
                what: {
                    kind: int(totals.get(what, {}).get(kind, 0)) + counts[kind] for kind in KINDS
                }
                for what, counts in (("found", findings.found), ("repaired", findings.repaired))
            },
        }
        return queued

    async def _alert(
        self, session: AsyncSession, now: datetime, findings: Findings, kinds: list[str]
    ) -> int:
        report_ids = sorted({r for kind in kinds for r in findings.reports[kind]})
        references = list(
            await session.scalars(
                select(Report.reference)
                .where(Report.id.in_(report_ids))
                .order_by(Report.received_at)
                .limit(REFERENCES_SHOWN)
            )
        )
        body = texts.operators_alert(
            language=self.language,
            found={kind: findings.found[kind] for kind in kinds},
            repaired=findings.repaired,
            references=references,
            total_reports=len(report_ids),
        )
        return await outbox.alert_operators(
            session, self.operators, language=self.language, body=body, now=now
        )


async def read_beat(session: AsyncSession) -> Beat:
    """The auditor's last completed run (`beat_at` None: it never finished one), with the totals
    of all its runs (every kind named, 0 when never found)."""
    row = await session.get(Heartbeat, NAME)
    detail = {} if row is None else row.detail
    totals = detail.get("totals", {})
    return Beat(
        None if row is None else row.beat_at,
        dict(detail.get("findings", {})),
        found_total={kind: int(totals.get("found", {}).get(kind, 0)) for kind in KINDS},
        repaired_total={kind: int(totals.get("repaired", {}).get(kind, 0)) for kind in KINDS},
    )


async def singleton(session: AsyncSession, key: int) -> bool:
    """Whether this transaction may run a singleton module (the auditor, the sealer): on
    PostgreSQL, when it holds the advisory lock `key` (released at commit); SQLite's write
    transaction is exclusive already."""
    if session.get_bind().dialect.name != "postgresql":
        return True
    held = await session.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": key})
    return bool(held)


def _page_lost(cutoff: datetime) -> ColumnElement[bool]:
    """A `sending` page whose lease ran out before `cutoff`, or that has none although no
    bundle carries it (a rider has no lease of its own and follows its carrier)."""
    return or_(
        Page.lease_until < cutoff,
        and_(
            Page.lease_until.is_(None),
            Page.claimed_at < cutoff,
            or_(Page.bundle_id.is_(None), Page.bundle_id == Page.id),
        ),
    )


def _text_lost(cutoff: datetime) -> ColumnElement[bool]:
    """A `sending` text whose lease ran out before `cutoff`, or that has none."""
    return or_(OutboundMessage.lease_until < cutoff, OutboundMessage.lease_until.is_(None))
