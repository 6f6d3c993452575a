"""A process killed in the middle of paging (reliability.md §5 rows 17-18): it claimed a page and
died before sending it, or after the provider accepted it and before the outcome was recorded; or
it claimed a step's timer and died before moving the report on.

The victim is a `serve` process that kills itself at the crash point (`SOS_CRASH_AT`) while
sending the page of a report it just took in; the survivor is a worker, paused until the victim
is dead so the victim surely claims first. The claim's lease runs out and the survivor finds the
page lost mid-send:

- killed before its dispatch mark (`after_claim`), the page was provably never sent: the
  survivor sends the same page, once, within lease + 5 s;
- killed after the provider accepted it (`after_send`), the outcome is unknown, and the sid died
  with the victim. The survivor looks the page up at Twilio by number and time (its accept link
  tells it apart): found, it counts as sent, with Twilio's sid, once: never a blind second send,
  never a false "possible duplicate", and the chain goes on at its own pace.

A timer lost with its worker is taken over once its lease runs out, and the step fires once,
late.
"""

from __future__ import annotations

import signal

import httpx
import pytest

from routing.page.models import Page
from tests.faults.conftest import FAST
from tests.faults.fake_twilio import FakeTwilio, Send
from tests.faults.invariants import assert_invariants, is_flagged
from tests.faults.procs import Processes, account_sid, eventually
from tests.faults.site import PHONES, Site

pytestmark = [pytest.mark.faults, pytest.mark.postgres]

LEASE = float(FAST["SOS_ENGINE__PAGE_LEASE_SECONDS"])
TIMER_LEASE = float(FAST["SOS_ENGINE__TIMER_LEASE_SECONDS"])
STEP = 5


async def _killed_while_sending(point: str, procs: Processes, site: Site) -> tuple[list[str], Page]:
    """A report whose first page the victim claimed and then died at `point`; returns the
    accepted report ids and that page."""
    victim = procs.start_serve("serve-1", SOS_CRASH_AT=point)
    survivor = procs.start_worker("worker-1")
    procs.ready(victim, survivor)
    survivor.pause()
    accepted = []
    async with httpx.AsyncClient(base_url=str(victim.url), timeout=10) as client:
        await site.seed(client, ("sms", ["Anna"], 30), ("sms", ["Bram"], 30))
        try:
            r = await site.submit(client)
            accepted.append(r.json()["id"])
        except httpx.TransportError:
            pass  # it may die before it answers; the report was committed before any claim
    assert victim.wait_exit(timeout=15) == -signal.SIGKILL, "the victim did not crash"
    survivor.resume()

    [report] = await site.reports()
    [lost] = await site.pages(report.id)
    assert (lost.state, lost.staff_id) == ("sending", site.staff["Anna"])
    return accepted, lost


async def test_a_worker_killed_before_sending_a_page_leaves_it_to_another_worker_once(
    procs: Processes, site: Site, twilio: FakeTwilio
) -> None:
    accepted, lost = await _killed_while_sending("after_claim", procs, site)
    assert twilio.by_page().get(lost.id, []) == []

    async def sent() -> Send | None:
        return next(iter(twilio.by_page().get(lost.id, [])), None)

    again = await eventually(sent, within=LEASE + 15, what="the lost page to go out")
    assert again.account == account_sid("worker-1")
    assert again.to == PHONES["Anna"]
    assert lost.claimed_at is not None
    recovery = (again.at - lost.claimed_at).total_seconds()
    assert recovery <= LEASE + 5, f"the page waited {recovery:.1f} s after the crash"

    await eventually(site.settled, within=10, what="nothing in flight")
    [page] = await site.pages(lost.report_id)
    assert (page.id, page.state) == (lost.id, "sent")
    assert not is_flagged(page)
    assert len(twilio.by_page()[lost.id]) == 1
    await assert_invariants(site, twilio, accepted)


async def test_a_worker_killed_after_the_provider_took_a_page_finds_it_there_and_counts_it_once(
    procs: Processes, site: Site, twilio: FakeTwilio
) -> None:
    accepted, lost = await _killed_while_sending("after_send", procs, site)
    [reached] = twilio.by_page().get(lost.id, [])
    assert reached.account == account_sid("serve-1")

    async def reconciled() -> Page | None:
        [page] = [p for p in await site.pages(lost.report_id) if p.id == lost.id]
        return None if page.state in ("sending", "unknown") else page

    found = await eventually(reconciled, within=LEASE + 15, what="the lost page to be settled")
    assert (found.id, found.state, found.external_id) == (lost.id, "sent", reached.sid)
    assert not is_flagged(found)
    assert lost.claimed_at is not None
    assert found.sent_at is not None
    recovery = (found.sent_at - lost.claimed_at).total_seconds()
    assert recovery <= LEASE + 5, f"the page was settled {recovery:.1f} s after the crash"

    await eventually(site.settled, within=10, what="nothing in flight")
    assert [p.id for p in await site.pages(lost.report_id)] == [lost.id], "Bram's turn is to come"
    assert len(twilio.by_page()[lost.id]) == 1  # Anna's page never went out again
    timeline = [e.type for e in await site.events(lost.report_id)]
    assert timeline.count("page_sent") == 1
    assert "page_unknown" in timeline
    await assert_invariants(site, twilio, accepted)


async def test_a_worker_killed_holding_a_step_timer_hands_the_step_over_after_its_lease(
    procs: Processes, site: Site, twilio: FakeTwilio
) -> None:
    victim = procs.start_serve("serve-1", SOS_CRASH_AT="after_timer_claim")
    survivor = procs.start_worker("worker-1")
    procs.ready(victim, survivor)
    survivor.pause()
    async with httpx.AsyncClient(base_url=str(victim.url), timeout=10) as client:
        await site.seed(client, ("sms", ["Anna"], STEP), ("sms", ["Bram"], 30))
        report = await site.report(client)
    # The first timer of the report the victim claims (Anna's step running out, or the step
    # itself starting) is the one it dies holding.
    assert victim.wait_exit(timeout=STEP + 15) == -signal.SIGKILL, "the victim did not crash"
    survivor.resume()
    [timer] = [t for t in await site.timers() if t.state == "leased"]
    assert timer.claimed_at is not None

    async def survivor_paged() -> Send | None:
        return next((s for s in twilio.pages() if s.account == account_sid("worker-1")), None)

    taken_over = await eventually(
        survivor_paged, within=TIMER_LEASE + 15, what="the step to be taken over"
    )
    recovery = (taken_over.at - timer.claimed_at).total_seconds()
    assert recovery <= TIMER_LEASE + 5, f"the step waited {recovery:.1f} s after the crash"

    await eventually(site.settled, within=10, what="nothing in flight")
    [page] = [p for p in await site.pages(report) if p.id == taken_over.page_id]
    assert page.is_late  # taken over after the lease: late, and it says so
    sent = [e for e in await site.events(report) if e.type == "page_sent"]
    assert any("(late)" in e.detail and e.data["page_id"] == page.id for e in sent)
    assert all(len(sends) == 1 for sends in twilio.by_page().values())
    await assert_invariants(site, twilio, [report])
