"""Several `serve` and `worker` processes on one database (reliability.md §5 rows 19-20): no
leader, the work spreads over the processes, and still every page goes out once; acknowledgements
through one process race the escalations of the others, and nothing is paged after an
acknowledgement commits.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import httpx
import pytest

from tests.faults.fake_twilio import FakeTwilio
from tests.faults.invariants import assert_invariants, paged
from tests.faults.procs import Processes, eventually
from tests.faults.site import Site

pytestmark = [pytest.mark.faults, pytest.mark.postgres]

REPORTS = 40
CUSTOMERS = 8  # posting at once, each to both serve processes in turn
STEP = 5


async def test_several_processes_share_the_work_without_a_leader_and_page_once(
    procs: Processes, site: Site, twilio: FakeTwilio
) -> None:
    serves = [procs.start_serve(f"serve-{n}") for n in (1, 2)]
    workers = [procs.start_worker(f"worker-{n}") for n in (1, 2)]
    procs.ready(*serves, *workers)
    clients = [httpx.AsyncClient(base_url=str(s.url), timeout=10) for s in serves]
    try:
        await site.seed(clients[0], ("sms", ["Anna", "Bram"], STEP), ("sms", ["Cas", "Dirk"], 30))
        started = time.monotonic()

        async def customer(n: int) -> list[str]:
            return [await site.report(clients[(n + i) % 2]) for i in range(REPORTS // CUSTOMERS)]

        batches = await asyncio.gather(*(customer(n) for n in range(CUSTOMERS)))
        reports = [r for batch in batches for r in batch]
        # Around the time step 2 falls due in every process, Anna accepts half of the reports,
        # through either API process.
        await asyncio.sleep(max(0.0, STEP - 0.5 - (time.monotonic() - started)))
        acked = reports[::2]
        answers = await asyncio.gather(
            *(site.ack(clients[i % 2], r, "Anna") for i, r in enumerate(acked))
        )
        assert [a.status_code for a in answers] == [200] * len(acked)
    finally:
        for client in clients:
            await client.aclose()

    async def everyone_paged() -> bool:
        return all([await paged(site, twilio, r) for r in reports])

    await eventually(everyone_paged, within=10, what="every report to be paged")
    open_ = set(reports) - set(acked)

    async def step_two_paged() -> bool:
        pages = [p for r in open_ for p in await site.pages(r) if p.step_no == 2]
        sent = twilio.by_page()
        return len(pages) == 2 * len(open_) and all((p.bundle_id or p.id) in sent for p in pages)

    await eventually(step_two_paged, within=STEP + 10, what="step 2 of the open reports")
    await eventually(site.settled, within=10, what="nothing in flight")

    senders = Counter(s.account for s in twilio.pages())
    assert len(senders) >= 2, f"one process did all the paging: {senders}"
    await assert_invariants(site, twilio, reports)
