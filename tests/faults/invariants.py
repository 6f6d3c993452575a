"""What must hold after any fault, checked at the end of every scenario (reliability.md §5):

- **L** every report that got a 2xx is stored, whole: its promise timer, and pages or a timer
  that will page someone;
- **D** no page went out twice: the fake provider got each page id at most once; every page the
  database calls sent really reached it (itself, or the bundle that carried it); a page that
  reached the provider but whose outcome was never recorded is flagged as a possible duplicate
  (its report moved on, so someone else may have been paged for it too), and only a page whose
  outcome stayed unknown is flagged;
- **A** nothing was escalated or claimed for a report after its acknowledgement committed (in
  commit order: the timestamps the processes wrote are read before they wait for locks);
- **S** every verdict is right: `sla_met` is "acknowledged at or before the deadline"; a broken
  promise was recorded after the deadline (and soon after it: the engines are running when this
  is checked) and never turned into a kept one.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from routing.audit.verify import verify
from routing.page.models import Page
from tests.faults.fake_twilio import FakeTwilio
from tests.faults.site import Site

SENT_STATES = ("sent", "delivered", "answered")
POSSIBLE_DUPLICATE = "possible duplicate"
# How long after a deadline a running engine may take to record the broken promise.
VERDICT_SLACK = timedelta(seconds=5)


def is_flagged(page: Page) -> bool:
    return page.state == "failed" and POSSIBLE_DUPLICATE in (page.error or "")


async def paged(site: Site, twilio: FakeTwilio, report_id: str) -> bool:
    """Whether a page of the report reached the provider (itself, or in a bundled message)."""
    sent = twilio.by_page()
    return any((p.bundle_id or p.id) in sent for p in await site.pages(report_id))


async def assert_invariants(site: Site, twilio: FakeTwilio, accepted: Iterable[str]) -> None:
    reports = {r.id: r for r in await site.reports()}
    pages = await site.pages()
    by_id = {p.id: p for p in pages}
    timers = await site.timers()
    events = await site.events()
    sends = twilio.by_page()
    problems: list[str] = []

    # L: stored and whole.
    problems += [f"report {r} got a 2xx but is not stored" for r in set(accepted) - set(reports)]
    with_deadline = {t.report_id for t in timers if t.kind == "deadline"}
    paging = {p.report_id for p in pages} | {
        t.report_id for t in timers if t.kind != "deadline" and t.state in ("pending", "leased")
    }
    for report in reports.values():
        if report.id not in with_deadline:
            problems.append(f"report {report.reference} has no promise timer")
        if report.chain and report.id not in paging:
            problems.append(f"report {report.reference} was stored, but nobody will be paged")

    # D: at most once at the provider, and "sent" means sent.
    for page_id, got in sends.items():
        if len(got) > 1:
            problems.append(f"page {page_id} went out {len(got)} times")
        page = by_id.get(page_id)
        if page is None:
            problems.append(f"the provider got page {page_id}, which is not in the database")
        elif page.state not in (*SENT_STATES, "canceled") and not is_flagged(page):
            problems.append(
                f"page {page_id} reached the provider but is {page.state!r} and not flagged "
                f"as a possible duplicate ({page.error})"
            )
    for page in pages:
        if page.state in SENT_STATES and (page.bundle_id or page.id) not in sends:
            problems.append(f"page {page.id} is {page.state!r} but never reached the provider")
    unknown = {e.data.get("page_id") for e in events if e.type == "page_unknown"}
    for page in pages:  # (a bundle's pages share the outcome of the message that carried them)
        if is_flagged(page) and (page.bundle_id or page.id) not in unknown:
            problems.append(f"page {page.id} is flagged, but its outcome was never unknown")

    # A: nothing new after the acknowledgement committed.
    order = await site.commit_order()
    acked = {report_id: at for report_id, what, at in order if what == "acknowledged"}
    for report_id, what, at in order:
        if what != "acknowledged" and report_id in acked and at > acked[report_id]:
            problems.append(f"report {report_id}: {what} after its acknowledgement committed")

    # S: verdicts.
    missed_at = {e.report_id: e.at for e in events if e.type == "sla_missed"}
    now = datetime.now(UTC)
    for report in reports.values():
        name = f"report {report.reference}"
        if report.acknowledged_at is not None:
            kept = report.acknowledged_at <= report.deadline_at
            if report.sla_met is not kept:
                problems.append(f"{name}: sla_met is {report.sla_met}, in time: {kept}")
        elif report.sla_met is True:
            problems.append(f"{name}: the promise counts as kept, but nobody acknowledged it")
        elif report.sla_met is None and now > report.deadline_at + VERDICT_SLACK:
            problems.append(f"{name}: its deadline passed long ago, but no verdict was recorded")
        if report.sla_met is False:
            at = missed_at.get(report.id)
            if at is None or at < report.deadline_at:
                problems.append(f"{name}: missed, but no sla_missed event after its deadline")

    # T: the audit log's hash chain holds, whichever processes sealed it and whenever they died.
    async with site.db() as session:
        audit_log = await verify(session)
    if not audit_log.ok:
        problems.append(f"audit log broken at {audit_log.broken}")

    assert not problems, "invariants broken:\n  " + "\n  ".join(problems)
