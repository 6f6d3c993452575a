"""A plain-Python model of what must hold for reports, and the checks that compare it with the
service's rows after every step of the stateful test (`test_stateful.py`).

The model does not predict who is paged when: that is the engine's business and depends on tiers,
per-person limits and provider outcomes. It keeps what a customer, a staff member or an auditor
can rely on whatever the interleaving:

- every report the API accepted exists, with its contacts, its acceptor and its resolution;
- a provider never gets the same page twice (one flagged resend after an unknown outcome aside),
  and gets nothing for a report once its acknowledgement committed;
- the verdict on the promise: accepted at or before the deadline is met, a deadline that passed
  without acceptance is missed, and a missed verdict never turns back;
- every state change is on the report's timeline, and a page's state never moves backwards;
- an open report always has a next action (a timer) until it is decided.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from routing.audit.models import AuditEvent
from routing.page.models import EscalationTimer, Page
from routing.report.models import Report
from tests.fakes.ledger import Request

# The deadline timer fires just after the deadline: an acceptance at the deadline still counts.
MISSED_AFTER = timedelta(milliseconds=1)

# Where a page may be by the next look, from where it was: states only move forward.
LATER_STATES: dict[str, set[str]] = {
    "queued": {"queued", "pending", "canceled"},
    "pending": {"pending", "sending", "canceled"},
    "sending": {"sending", "pending", "unknown", "sent", "failed", "canceled"},
    "unknown": {"unknown", "pending", "sent", "failed", "answered", "canceled"},
    "sent": {"sent", "delivered", "answered", "failed"},
    "delivered": {"delivered", "answered", "failed"},
    "answered": {"answered"},
    "failed": {"failed"},
    "canceled": {"canceled"},
}


def _closure(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """Several transitions can happen between two looks: allow every state reachable."""
    reach = {state: set(nxt) for state, nxt in graph.items()}
    changed = True
    while changed:
        changed = False
        for nxt in reach.values():
            more = set().union(*(reach[s] for s in nxt)) - nxt
            if more:
                nxt |= more
                changed = True
    return reach


REACHABLE = _closure(LATER_STATES)


@dataclass
class Case:
    """One report as its customer and its staff saw it through the API."""

    id: str
    customer: int
    deadline_at: datetime
    contacts: int = 1
    acked_by: str | None = None
    acked_at: datetime | None = None
    # What existed when the acknowledgement committed: nothing of this report may come after.
    last_page_at_ack: int = 0
    requests_at_ack: int = 0
    resolved_by: str | None = None
    # A crashed worker held the deadline timer until then (the verdict may wait for takeover).
    deadline_held_until: datetime | None = None
    missed_seen: bool = False

    @property
    def is_resolved(self) -> bool:
        return self.resolved_by is not None

    def verdicts(self, now: datetime, settled_at: datetime) -> set[bool | None]:
        """The `sla_met` values allowed now; `settled_at`: when the engine last ran until idle."""
        if self.acked_at is not None:
            return {self.acked_at <= self.deadline_at}
        if now < self.deadline_at + MISSED_AFTER:
            return {None}
        held = self.deadline_held_until
        fired = settled_at >= self.deadline_at + MISSED_AFTER and (
            held is None or settled_at > held
        )
        return {False} if fired or self.missed_seen else {None, False}


@dataclass
class Model:
    # When the engine last ran until idle (the clock may have moved on since, engines down).
    settled_at: datetime
    cases: list[Case] = field(default_factory=list)
    # Idempotency-Key → (the body it first came with, the report it answers with).
    keys: dict[str, tuple[dict[str, Any], str]] = field(default_factory=dict)
    # Per page id, the state seen at the last look.
    page_states: dict[int, str] = field(default_factory=dict)

    def case(self, report_id: str) -> Case:
        return next(c for c in self.cases if c.id == report_id)

    def open_case(self, customer: int) -> Case | None:
        return next((c for c in self.cases if c.customer == customer and not c.is_resolved), None)

    def accept(self, case: Case, staff: str, now: datetime, *, pages: int, requests: int) -> None:
        case.acked_by, case.acked_at = staff, now
        case.last_page_at_ack, case.requests_at_ack = pages, requests


@dataclass(frozen=True)
class Snapshot:
    """Every row the checks look at, read in one session."""

    now: datetime
    reports: dict[str, Report]
    pages: list[Page]
    timers: list[EscalationTimer]
    events: dict[str, list[AuditEvent]]

    @classmethod
    async def read(cls, db: async_sessionmaker[AsyncSession], now: datetime) -> Snapshot:
        async with db() as session:
            reports = {r.id: r for r in await session.scalars(select(Report))}
            pages = list(await session.scalars(select(Page).order_by(Page.id)))
            timers = list(await session.scalars(select(EscalationTimer)))
            events: dict[str, list[AuditEvent]] = defaultdict(list)
            for event in await session.scalars(select(AuditEvent).order_by(AuditEvent.id)):
                events[event.report_id or ""].append(event)
        return cls(now, reports, pages, timers, events)


def check(model: Model, seen: Snapshot, ledger: Sequence[Request], staff: dict[str, str]) -> None:
    """Everything that must hold after any step; `staff`: name → staff id."""
    names = {staff_id: name for name, staff_id in staff.items()}
    _reports_exist(model, seen, names)
    _verdicts(model, seen)
    page_report = {p.id: p.report_id for p in seen.pages}
    _each_page_once(ledger, seen)
    _nothing_after_ack(model, seen, ledger, page_report)
    _pages_move_forward(model, seen)
    for case in model.cases:
        _timeline(case, seen, names)
        _next_action(case, seen)


def _reports_exist(model: Model, seen: Snapshot, names: dict[str, str]) -> None:
    assert len(seen.reports) == len(model.cases), (
        f"{len(model.cases)} reports accepted, {len(seen.reports)} stored"
    )
    for case in model.cases:
        report = seen.reports.get(case.id)
        assert report is not None, f"accepted report {case.id} is missing"
        assert report.contacts == case.contacts, (case.id, report.contacts, case.contacts)
        assert report.deadline_at == case.deadline_at, "the promise clock moved"
        assert names.get(report.acknowledged_by_id or "") == case.acked_by, (
            f"report {case.id}: accepted by {case.acked_by}, stored "
            f"{names.get(report.acknowledged_by_id or '')}"
        )
        assert report.acknowledged_at == case.acked_at
        assert names.get(report.resolved_by_id or "") == case.resolved_by
        status = "resolved" if case.is_resolved else "acknowledged" if case.acked_by else "open"
        assert report.status == status, (case.id, report.status, status)


def _verdicts(model: Model, seen: Snapshot) -> None:
    for case in model.cases:
        met = seen.reports[case.id].sla_met
        allowed = case.verdicts(seen.now, model.settled_at)
        assert met in allowed, (
            f"report {case.id}: sla_met is {met}, expected one of {allowed} (deadline "
            f"{case.deadline_at:%H:%M:%S}, accepted {case.acked_at}, now {seen.now:%H:%M:%S})"
        )
        case.missed_seen = case.missed_seen or met is False


def _each_page_once(ledger: Sequence[Request], seen: Snapshot) -> None:
    """A provider takes each page once. The one exception the design allows: a single resend,
    flagged as a possible duplicate, after an outcome that stayed unknown."""
    taken = Counter(page_id for r in ledger if r.taken for page_id in r.covers)
    flagged = {
        e.data.get("page_id")
        for events in seen.events.values()
        for e in events
        if "possible duplicate" in e.detail
    }
    for page_id, times in taken.items():
        allowed = 2 if page_id in flagged else 1
        assert times <= allowed, f"page {page_id} reached the provider {times} times"


def _nothing_after_ack(
    model: Model, seen: Snapshot, ledger: Sequence[Request], page_report: dict[int, str]
) -> None:
    for case in model.cases:
        if case.acked_at is None:
            continue
        late = [p.id for p in seen.pages if p.report_id == case.id and p.id > case.last_page_at_ack]
        assert not late, f"report {case.id}: page(s) {late} created after its acknowledgement"
        after = [
            r
            for r in ledger[case.requests_at_ack :]
            if any(page_report.get(p) == case.id for p in r.covers)
        ]
        assert not after, (
            f"report {case.id}: paged after its acknowledgement: "
            f"{[(f'{r.at:%H:%M:%S}', r.staff_name, str(r.channel), str(r.fault)) for r in after]}"
        )
        waiting = [
            p.id for p in seen.pages if p.report_id == case.id and p.state in ("pending", "queued")
        ]
        assert not waiting, f"report {case.id}: page(s) {waiting} still waiting after the ack"
        armed = [
            t.kind
            for t in seen.timers
            if t.report_id == case.id and t.state in ("pending", "leased")
        ]
        assert not armed, f"report {case.id}: timer(s) {armed} still armed after the ack"


def _pages_move_forward(model: Model, seen: Snapshot) -> None:
    for page in seen.pages:
        before = model.page_states.get(page.id)
        if before is not None:
            assert page.state in REACHABLE[before], (
                f"page {page.id} went from {before} back to {page.state}"
            )
        model.page_states[page.id] = page.state


def _timeline(case: Case, seen: Snapshot, names: dict[str, str]) -> None:
    """Every transition of the report and of each of its pages is on its timeline."""
    events = seen.events.get(case.id, [])
    kinds = Counter(e.type for e in events)
    report = seen.reports[case.id]
    assert kinds["received"] == 1, kinds
    assert kinds["contact"] == case.contacts - 1, kinds
    assert kinds["acknowledged"] == (1 if case.acked_by else 0), kinds
    if case.acked_by:
        [ack] = [e for e in events if e.type == "acknowledged"]
        assert names.get(ack.actor or "") == case.acked_by, ack.detail
    assert kinds["resolved"] == (1 if case.is_resolved else 0), kinds
    assert kinds["sla_missed"] == (1 if report.sla_met is False else 0), kinds

    by_page: dict[int, set[str]] = defaultdict(set)
    for e in events:
        if isinstance(e.data.get("page_id"), int):
            by_page[e.data["page_id"]].add(e.type)
    needs = {
        "sent": {"page_sent"},
        "delivered": {"page_delivered"},
        "failed": {"page_failed"},
        "unknown": {"page_unknown"},
    }
    pages = [p for p in seen.pages if p.report_id == case.id]
    for page in pages:
        mine = by_page[page.id]
        if page.state in needs:
            assert needs[page.state] <= mine, f"page {page.id} is {page.state}; events {mine}"
        elif page.state == "answered":
            assert "page_delivered" in mine or kinds["acknowledged"], mine
        elif page.state == "canceled":
            assert kinds["acknowledged"] or kinds["resolved"], f"page {page.id} canceled unasked"
        elif page.state == "pending" and page.tries:
            assert mine & {"page_retry", "page_unknown"}, f"page {page.id} requeued silently"
    _escalations(case, events, pages)


def _escalations(case: Case, events: Sequence[AuditEvent], pages: Sequence[Page]) -> None:
    """Each step started, each later tier released, the last resort and all hands: one
    `escalated` event each."""
    escalated = [e.data for e in events if e.type == "escalated"]
    steps = Counter(
        (d["step"], d["attempt"]) for d in escalated if "attempt" in d and d.get("step", 0) > 0
    )
    tiers: dict[tuple[int, int], set[int]] = defaultdict(set)
    released: dict[tuple[int, int], set[int]] = defaultdict(set)
    for page in pages:
        if page.step_no > 0:
            key = (page.step_no, page.attempt_no)
            tiers[key].add(page.tier_no)
            if page.tier_no and page.state not in ("queued", "canceled"):
                released[key].add(page.tier_no)
    for key in set(tiers) | set(steps):
        start = 0 if key == (1, 0) else 1
        low = start + len(released[key])
        high = start + len(tiers[key] - {0})
        assert low <= steps[key] <= high, (
            f"report {case.id} step {key}: {steps[key]} escalated event(s), expected {low}..{high}"
        )
    for step_no, flag in ((0, "last_resort"), (-1, "all_hands")):
        events_of = sum(1 for d in escalated if d.get(flag))
        assert events_of <= 1, f"report {case.id}: {flag} escalated {events_of} times"
        if any(p.step_no == step_no for p in pages):
            assert events_of == 1, f"report {case.id}: {flag} pages without an escalated event"


def _next_action(case: Case, seen: Snapshot) -> None:
    """An open report nobody accepted, with no verdict yet, is never forgotten: some timer is
    armed (or held by a worker whose lease will run out)."""
    report = seen.reports[case.id]
    if report.acknowledged_at is not None or report.sla_met is not None:
        return
    armed = [t for t in seen.timers if t.report_id == case.id and t.state in ("pending", "leased")]
    assert armed, f"report {case.id} is open and undecided with no timer armed"
