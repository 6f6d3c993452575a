"""Recovery benchmark: how long the reports of a worker killed mid-send wait for another worker.

Per run, on a private PostgreSQL cluster and a loopback fake Twilio (the fault suite's helpers,
tests/faults/): `--reports` reports are taken in through the API (in this process, without an
engine), a worker that kills itself at `--point` claims their pages and dies, and `--survivors`
workers, started beforehand and paused so the victim surely claims first, are resumed at once.
For every report whose page died with the victim, recovery is the time from the kill (seen here,
polled every few ms) until the fake provider got a page of that report from a survivor: the
same page resent, or the report's next step when the lost page was given up as a possible
duplicate. The lost pages' ends are counted too.

Prints a table of medians over `--runs` runs and writes JSON to bench/results/.

    PYTHONPATH=. python bench/recovery.py --runs 5 --reports 20 --lease 4

Run as root (the private cluster runs as the `postgres` user through runuser) or as a user
allowed to run initdb. Everything it starts, it ends by pid.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import signal
import statistics
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from app import migrate
from app.container import build
from app.main import create_app
from app.settings import Settings
from tests.faults.fake_twilio import FakeTwilio
from tests.faults.invariants import is_flagged
from tests.faults.procs import Cluster, Processes, account_sid, eventually, wait_until
from tests.faults.site import Site
from tests.keys import use as use_test_keys

use_test_keys()  # the in-process intake and the processes it starts share the suite's data keys

ROOT = Path(__file__).resolve().parent.parent
AUTH_TOKEN = "recovery-bench-token"
TEMPLATE = "sos_template"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def take_in(site: Site, database_url: str, reports: int) -> list[str]:
    """Staff, a chain (SMS to Anna, then to Bram) and the reports, through the real API."""
    settings = Settings(database_url=database_url, seed_demo=False)
    container = build(settings)
    transport = httpx.ASGITransport(app=create_app(container, run_engine=False))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            await site.seed(client, ("sms", ["Anna"], 60), ("sms", ["Bram"], 60))
            return [await site.report(client) for _ in range(reports)]
    finally:
        await container.close()


async def one_run(cluster: Cluster, n: int, args: argparse.Namespace, logs: Path) -> dict[str, Any]:
    database = f"recovery_{n}"
    cluster.sql(f"CREATE DATABASE {database} TEMPLATE {TEMPLATE}")
    url = cluster.url(database)
    timings = {
        "SOS_ENGINE__PAGE_LEASE_SECONDS": str(args.lease),
        "SOS_ENGINE__SEND_TIMEOUT_SECONDS": str(args.lease * 0.75),
        "SOS_ENGINE__RECONCILE_RETRY_SECONDS": "1",
        "SOS_ENGINE__RECONCILE_GIVE_UP_SECONDS": str(args.give_up),
        "SOS_PAGING__MAX_SMS_PER_WINDOW": "100",
    }
    site = Site(url)
    (logs / database).mkdir()
    with FakeTwilio(AUTH_TOKEN) as twilio:
        procs = Processes(
            database_url=url,
            provider_url=twilio.url,
            auth_token=AUTH_TOKEN,
            workdir=logs / database,
            env=timings,
        )
        try:
            survivors = [procs.start_worker(f"survivor-{i}") for i in range(args.survivors)]
            procs.ready(*survivors)
            for survivor in survivors:
                survivor.pause()
            reports = await take_in(site, url, args.reports)
            victim = procs.start_worker("victim", SOS_CRASH_AT=args.point)
            wait_until(
                lambda: not victim.alive, within=60, what="the victim to crash", interval=0.005
            )
            killed = datetime.now(UTC)
            for survivor in survivors:
                survivor.resume()
            if victim.popen.returncode != -signal.SIGKILL:
                raise RuntimeError(f"the victim ended with {victim.popen.returncode}")
            lost = [p for p in await site.pages() if p.state == "sending"]
            hit = {p.report_id for p in lost}
            mine = {account_sid(s.name) for s in survivors}

            async def recovered() -> dict[str, datetime] | None:
                covers: dict[int, set[str]] = {}  # message's page id -> the reports it covers
                for page in await site.pages():
                    covers.setdefault(page.bundle_id or page.id, set()).add(page.report_id)
                first: dict[str, datetime] = {}
                for send in twilio.pages():
                    if send.account in mine:
                        for report in covers.get(send.page_id or 0, set()) & hit:
                            first.setdefault(report, send.at)
                return first if len(first) == len(hit) else None

            first = await eventually(
                recovered, within=args.lease + args.give_up + 30, what="every report paged"
            )
            await eventually(site.settled, within=30, what="nothing in flight")
            ends = Counter(
                "given up, flagged" if is_flagged(p) else p.state
                for p in await site.pages()
                if p.id in {q.id for q in lost}
            )
        finally:
            procs.end_all()
            await site.close()
    seconds = [(at - killed).total_seconds() for at in first.values()]
    return {
        "reports": len(reports),
        "lost_pages": len(lost),
        "reports_hit": len(hit),
        "lost_pages_ended": dict(ends),
        "recovery_p50_s": statistics.median(seconds),
        "recovery_max_s": max(seconds),
        "recovery_s": sorted(seconds),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--reports", type=int, default=20, help="pages the victim holds (<= 50)")
    parser.add_argument("--survivors", type=int, default=1)
    parser.add_argument("--point", choices=["after_claim", "after_send"], default="after_claim")
    parser.add_argument("--lease", type=float, default=4, help="SOS_ENGINE__PAGE_LEASE_SECONDS")
    parser.add_argument(
        "--give-up", type=float, default=2, help="SOS_ENGINE__RECONCILE_GIVE_UP_SECONDS"
    )
    args = parser.parse_args()

    cluster = Cluster()
    logs = Path(tempfile.mkdtemp(prefix="sos-recovery-logs-"))
    try:
        cluster.start()
        cluster.sql(f"CREATE DATABASE {TEMPLATE}")
        await asyncio.to_thread(migrate.upgrade, cluster.url(TEMPLATE))
        runs = []
        for n in range(1, args.runs + 1):
            started = time.monotonic()
            runs.append(await one_run(cluster, n, args, logs))
            print(
                f"run {n}: {runs[-1]['lost_pages']} pages lost with the victim, recovery p50 "
                f"{runs[-1]['recovery_p50_s']:.2f} s, max {runs[-1]['recovery_max_s']:.2f} s "
                f"({time.monotonic() - started:.0f} s)"
            )
    finally:
        cluster.destroy()
        shutil.rmtree(logs, ignore_errors=True)

    summary = {
        "recovery_p50_s": statistics.median(r["recovery_p50_s"] for r in runs),
        "recovery_max_s": statistics.median(r["recovery_max_s"] for r in runs),
        "recovery_p99_all_s": pct([s for r in runs for s in r["recovery_s"]], 0.99),
    }
    result = {"at": datetime.now(UTC).isoformat(), "args": vars(args), "runs": runs}
    result["median"] = summary
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"recovery-{args.point}-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    path.write_text(json.dumps(result, indent=2))
    ends = Counter[str]()
    for run in runs:
        ends.update(run["lost_pages_ended"])
    print(
        f"\nworker killed at {args.point}, lease {args.lease:g} s, give-up {args.give_up:g} s, "
        f"{args.reports} reports, {args.survivors} survivor(s); median of {args.runs} runs"
    )
    print(f"  {'metric':<34} {'seconds':>8}")
    for key, value in summary.items():
        print(f"  {key:<34} {value:8.2f}")
    print(f"  lost pages, how they ended (all runs): {dict(ends)}")
    print(f"  written to {path.relative_to(ROOT)}")


if __name__ == "__main__":
    asyncio.run(main())
