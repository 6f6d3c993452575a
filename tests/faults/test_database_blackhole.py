"""The network to PostgreSQL turns slow, then silent, then comes back (reliability.md §5 row 23).

Every connection of the `serve` and `worker` processes goes through a proxy (`proxy.py`) that
first adds 2 s to every round trip, then blackholes them: connections stay open, but nothing
passes, so a statement sent meanwhile is never answered. The API must still answer every request
within a bound, 201 or 503 with `Retry-After` (never a 500, never a hang); `/readyz` must say
"not ready" within its own bound while `/healthz` stays 200; and once the network is back, the
API takes reports again and the worker's engine pages them, without restarting anything. Every
201 must be stored and paged, and the suite's invariants hold.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.faults.fake_twilio import FakeTwilio
from tests.faults.invariants import assert_invariants, paged
from tests.faults.procs import Cluster, Processes, account_sid, eventually
from tests.faults.proxy import Proxy
from tests.faults.site import Site

pytestmark = [pytest.mark.faults, pytest.mark.postgres]

CUSTOMERS = 3  # reporting at the same time in each phase
DELAY = 2.0  # seconds added to every round trip to the database
# The processes' own bounds (shorter than the defaults, so the test stays short): a statement
# without an answer, and a whole request.
TIMEOUTS = {
    "SOS_DATABASE__STATEMENT_TIMEOUT_SECONDS": "3",
    "SOS_LIMITS__REQUEST_TIMEOUT_SECONDS": "6",
}
BOUND = 10.0  # no answer may take longer, whatever the network does
# /readyz gives the database 2 s (then up to 2 s more to close the connection that got no
# answer); /healthz does not look at the database.
PROBE_BOUND = 5.0
RECOVERY = 15.0  # after the heal: reports are taken and paged again within this


@dataclass(frozen=True)
class Answer:
    seconds: float
    status: int  # 0: no HTTP answer at all
    retry_after: str | None
    report_id: str | None


@pytest.fixture
def proxy(cluster: Cluster) -> Iterator[Proxy]:
    started = Proxy(cluster.port).start()
    try:
        yield started
    finally:
        started.stop()


async def timed(client: httpx.AsyncClient, site: Site) -> Answer:
    started = time.monotonic()
    try:
        r = await site.submit(client)
        status, retry_after = r.status_code, r.headers.get("Retry-After")
        report_id = r.json()["id"] if status == 201 else None
    except httpx.TransportError:
        status, retry_after, report_id = 0, None, None
    return Answer(time.monotonic() - started, status, retry_after, report_id)


async def burst(client: httpx.AsyncClient, site: Site) -> list[Answer]:
    return list(await asyncio.gather(*(timed(client, site) for _ in range(CUSTOMERS))))


async def probe(client: httpx.AsyncClient, url: str) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    r = await client.get(url)
    return r, time.monotonic() - started


async def test_a_slow_then_silent_database_gets_503_in_time_and_everything_recovers_by_itself(
    proxy: Proxy,
    database: str,
    procs: Processes,
    site: Site,
    twilio: FakeTwilio,
) -> None:
    procs.env.update({"SOS_DATABASE_URL": proxy.url(database), **TIMEOUTS})  # all through it
    # The API process runs no engine: what pages after the heal is the worker's engine.
    serve = procs.start_serve("serve-1", engine=False)
    worker = procs.start_worker("worker-1", monitor=True)
    procs.ready(serve, worker)
    answers: dict[str, list[Answer]] = {}

    async with httpx.AsyncClient(base_url=str(serve.url), timeout=30) as client:
        await site.seed(client, ("sms", ["Anna"], 30), ("sms", ["Bram"], 30))
        answers["before"] = await burst(client, site)

        proxy.delay(DELAY)
        answers["slow"] = await burst(client, site)

        proxy.blackhole()
        answers["silent"] = await burst(client, site)
        api_ready, api_ready_seconds = await probe(client, f"{serve.url}/readyz")
        worker_ready, worker_ready_seconds = await probe(client, f"{worker.url}/readyz")
        alive, alive_seconds = await probe(client, f"{serve.url}/healthz")
        answers["still silent"] = await burst(client, site)

        proxy.heal()

        async def taken() -> str | None:
            answer = await timed(client, site)
            answers.setdefault("healed", []).append(answer)
            return answer.report_id

        fresh = await eventually(taken, within=RECOVERY, what="a report to get 201 again")

        async def worker_ready_again() -> bool:
            return (await probe(client, f"{worker.url}/readyz"))[0].status_code == 200

        await eventually(worker_ready_again, within=RECOVERY, what="the worker to be ready")

    assert proxy.connections, "the processes did not go through the proxy"
    every = [a for phase in answers.values() for a in phase]
    assert {a.status for a in every} <= {201, 503}, f"answers other than 201/503: {answers}"
    assert all(a.retry_after for a in every if a.status == 503), "a 503 without Retry-After"
    slowest = max(every, key=lambda a: a.seconds)
    assert slowest.seconds <= BOUND, f"an answer took {slowest.seconds:.1f} s: {answers}"
    assert {a.status for a in answers["before"]} == {201}
    assert {a.status for a in answers["silent"] + answers["still silent"]} == {503}
    for ready in (api_ready, worker_ready):
        assert ready.status_code == 503, f"/readyz must say not ready: {ready.text}"
        assert ready.headers["Retry-After"]
        assert "database" in ready.json()["failed"]
    assert max(api_ready_seconds, worker_ready_seconds) <= PROBE_BOUND
    assert alive.status_code == 200
    assert alive_seconds <= 2

    async def fresh_report_paged_by_the_worker() -> bool:
        mine = {s.page_id for s in twilio.sends if s.account == account_sid("worker-1")}
        return any((p.bundle_id or p.id) in mine for p in await site.pages(fresh))

    await eventually(
        fresh_report_paged_by_the_worker, within=RECOVERY, what="the new report to be paged"
    )
    await eventually(site.settled, within=RECOVERY, what="nothing in flight")
    accepted = [a.report_id for a in every if a.report_id]

    async def all_paged() -> bool:
        return all([await paged(site, twilio, r) for r in accepted])

    await eventually(all_paged, within=RECOVERY, what="every stored report to be paged")
    await assert_invariants(site, twilio, accepted)
