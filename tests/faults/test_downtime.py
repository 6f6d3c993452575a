"""Every sos-router process is down for longer than a step and past a report's promise deadline,
then comes back (reliability.md §5 row 21, with real processes and the real clock).

Nothing waits in memory: the due steps and the deadline are rows. After the restart the overdue
steps fire at once and say they are late (the page, its "sent (late)" event and the escalation
event), and the broken promise is recorded as broken, late, and stays broken when someone
finally accepts.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import httpx
import pytest

from tests.faults.fake_twilio import FakeTwilio
from tests.faults.invariants import assert_invariants
from tests.faults.procs import Processes, eventually
from tests.faults.site import PHONES, Site

pytestmark = [pytest.mark.faults, pytest.mark.postgres]

SLA = 10
STEP = 5
AT_ONCE = 3  # seconds from the engine running again to an overdue page at the provider


async def test_after_downtime_overdue_steps_fire_at_once_marked_late_and_misses_stay_missed(
    procs: Processes, site: Site, twilio: FakeTwilio
) -> None:
    sla = {"SOS_SLA_SECONDS": str(SLA)}
    serve, worker = procs.start_serve("serve-1", **sla), procs.start_worker("worker-1", **sla)
    procs.ready(serve, worker)
    chain = [("sms", [name], STEP) for name in ("Anna", "Bram", "Cas", "Dirk")]
    async with httpx.AsyncClient(base_url=str(serve.url), timeout=10) as client:
        await site.seed(client, *chain)
        r1 = await site.report(client)
        await eventually(lambda: _paged(twilio, "Bram"), within=STEP + 5, what="step 2 of R1")
        r2 = await site.report(client)
        await eventually(lambda: _paged(twilio, "Anna", 2), within=5, what="step 1 of R2")
    await eventually(site.settled, within=5, what="nothing in flight")

    # Everything goes down, past R1's deadline and past a step of both reports.
    for proc in (serve, worker):
        proc.kill()
    deadline = (await site.get(r1)).deadline_at
    # Down until well past the deadline: the overdue steps are then late by more than the
    # escalator's slack (2 s) once everything is back, however quickly it starts.
    await asyncio.sleep(max(0.0, (deadline - datetime.now(UTC)).total_seconds()) + 2)
    restarted_at = datetime.now(UTC)
    serve = procs.start_serve("serve-2", port=procs.public_port, **sla)
    worker = procs.start_worker("worker-2", **sla)
    procs.ready(serve, worker)
    running = time.monotonic()

    # The overdue steps fire at once: R1's step 3 (Cas) and R2's step 2 (Bram).
    cas = await eventually(lambda: _paged(twilio, "Cas"), within=AT_ONCE, what="R1's late step")
    bram = await eventually(
        lambda: _paged(twilio, "Bram", 2), within=AT_ONCE, what="R2's late step"
    )
    assert time.monotonic() - running <= AT_ONCE
    for report_id, page_id, step in ((r1, cas, 3), (r2, bram, 2)):
        [page] = [p for p in await site.pages(report_id) if p.id == page_id]
        assert page.is_late
        assert page.step_no == step
        events = await site.events(report_id)
        [escalated] = [e for e in events if e.type == "escalated" and e.data["step"] == step]
        assert escalated.data["late"] is True
        assert "late by" in escalated.detail
        assert escalated.at >= restarted_at

        async def sent_late(report_id: str = report_id) -> bool:
            # The provider has the page; its outcome is recorded a moment later.
            events = await site.events(report_id)
            return any(e.type == "page_sent" and "(late)" in e.detail for e in events)

        await eventually(sent_late, within=AT_ONCE, what="the late page's 'sent (late)' event")

    # R1's promise broke while everything was down: recorded once it was back, and it stays.
    async def missed() -> bool:
        return (await site.get(r1)).sla_met is False

    await eventually(missed, within=AT_ONCE, what="R1's broken promise to be recorded")
    [verdict] = [e for e in await site.events(r1) if e.type == "sla_missed"]
    assert verdict.at >= restarted_at > deadline
    async with httpx.AsyncClient(base_url=str(serve.url), timeout=10) as client:
        for report_id in (r1, r2):
            r = await site.ack(client, report_id, "Anna")
            assert r.status_code == 200, r.text
    assert (await site.get(r1)).sla_met is False
    await eventually(site.settled, within=5, what="nothing in flight")
    await assert_invariants(site, twilio, [r1, r2])


async def _paged(twilio: FakeTwilio, name: str, times: int = 1) -> int | None:
    """The page id of the `times`-th page to `name` at the provider, once it arrived."""
    pages = [s.page_id for s in twilio.pages() if s.to == PHONES[name]]
    return pages[times - 1] if len(pages) >= times else None
