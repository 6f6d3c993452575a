"""PostgreSQL crashes and comes back during a burst of reports (reliability.md §5 row 22).

Customers keep reporting while the database is stopped without a shutdown checkpoint
(`pg_ctl stop -m immediate`) and started again. The API must answer every request quickly: 201
(stored) or 503 with `Retry-After` (try again), never a 500 and never a hang; every 201 must be in
the database afterwards, whole; and paging must resume by itself, without restarting anything.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import httpx
import pytest

from tests.faults.fake_twilio import FakeTwilio
from tests.faults.invariants import assert_invariants, paged
from tests.faults.procs import Cluster, Processes, eventually
from tests.faults.site import Site

pytestmark = [pytest.mark.faults, pytest.mark.postgres]

CUSTOMERS = 4  # reporting at the same time, each one report after the other
MAX_REQUESTS = 3000  # the burst ends by itself even if the clock misbehaves
OUTAGE_SECONDS = 3
FEW_SECONDS = 5  # no answer may take longer than this, outage or not


@dataclass(frozen=True)
class Answer:
    sent_at: float  # time.monotonic()
    seconds: float
    status: int  # 0: no HTTP answer at all
    retry_after: str | None
    report_id: str | None


async def test_reports_during_a_database_restart_get_201_or_503_and_none_is_lost(
    cluster: Cluster, procs: Processes, site: Site, twilio: FakeTwilio
) -> None:
    serve, worker = procs.start_serve("serve-1"), procs.start_worker("worker-1")
    procs.ready(serve, worker)
    answers: list[Answer] = []
    burst_over = asyncio.Event()

    async with httpx.AsyncClient(base_url=str(serve.url), timeout=30) as client:
        await site.seed(client, ("sms", ["Anna"], 30), ("sms", ["Bram"], 30))

        async def customer() -> None:
            while not burst_over.is_set() and len(answers) < MAX_REQUESTS:
                sent_at = time.monotonic()
                try:
                    r = await site.submit(client)
                    status, retry_after = r.status_code, r.headers.get("Retry-After")
                    report_id = r.json()["id"] if status == 201 else None
                except httpx.TransportError:
                    status, retry_after, report_id = 0, None, None
                answers.append(
                    Answer(sent_at, time.monotonic() - sent_at, status, retry_after, report_id)
                )
                if status != 201:
                    await asyncio.sleep(0.1)  # a client that backs off a little

        customers = [asyncio.create_task(customer()) for _ in range(CUSTOMERS)]
        await asyncio.sleep(1.5)
        await asyncio.to_thread(cluster.stop, "immediate")
        down_at = time.monotonic()
        await asyncio.sleep(OUTAGE_SECONDS)
        starting_at = time.monotonic()
        await asyncio.to_thread(cluster.start)
        up_at = time.monotonic()
        await asyncio.sleep(1.5)
        burst_over.set()
        await asyncio.gather(*customers)

        # Paging resumes by itself: a report made now is paged without restarting anything.
        fresh = await site.report(client)

    statuses = {a.status for a in answers}
    assert statuses <= {201, 503}, f"answers other than 201/503: {sorted(statuses)}"
    assert all(a.retry_after for a in answers if a.status == 503), "a 503 without Retry-After"
    slowest = max(answers, key=lambda a: a.seconds)
    assert slowest.seconds <= FEW_SECONDS, f"an answer took {slowest.seconds:.1f} s"
    during = [a.status for a in answers if down_at < a.sent_at < starting_at]
    assert during, "no report was attempted while the database was down"
    assert set(during) == {503}, "while the database was down, the API must answer 503"
    assert any(a.status == 201 and a.sent_at < down_at for a in answers)
    assert any(a.status == 201 and a.sent_at > up_at for a in answers)

    async def fresh_report_paged() -> bool:
        return await paged(site, twilio, fresh)

    await eventually(fresh_report_paged, within=10, what="the new report to be paged")
    await eventually(site.settled, within=15, what="nothing in flight")
    accepted = [a.report_id for a in answers if a.report_id] + [fresh]
    unpaged = [r for r in accepted if not await paged(site, twilio, r)]
    assert not unpaged, f"{len(unpaged)} stored reports were never paged"
    await assert_invariants(site, twilio, accepted)
