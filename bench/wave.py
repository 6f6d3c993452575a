"""A phishing wave against one machine: 5,000 reports offered within 60 seconds.

Starts `sos-router serve` (plus a worker on PostgreSQL) with the demo rota — three people, calls
and SMS, so the per-contact limits are what protect their phones — and Twilio pointed at the
loopback fake provider, then offers the reports open-loop and checks what a bank would ask:

- no 500 and no dropped connection; a 503 (overloaded, with `Retry-After`) is retried, as the
  app must, and every report is accepted in the end; every 2xx report is stored (rows == 2xx
  answers);
- every report is counted against the promise: with the promise shortened to SOS_SLA_SECONDS
  (default here 120 s), each one ends acknowledged or with a verdict once its deadline passed;
- nobody got more than SOS_PAGING__MAX_SMS_PER_WINDOW (5) SMS in any window
  (SOS_PAGING__SMS_WINDOW_SECONDS, 900 s), and the SMS pages beyond that went out bundled.

    python -m bench.wave --db postgres [--reports 5000 --seconds 60]

Exit 0 when every check holds; a JSON result goes to bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from app import keys
from app.db import create_engine, create_sessionmaker
from app.seed import seed_demo
from app.settings import Settings
from bench import loadgen
from bench.setup import ROOT, free_port, fresh_database, process, service_env, wait_ready
from routing.page.models import Page
from routing.report.models import Report

SLA_SECONDS = 120
SMS_LIMIT, SMS_WINDOW = 5, timedelta(seconds=900)


async def seed(url: str) -> str:
    keys.install(Settings(database_url=url), warn=False)  # the demo staff's phones are encrypted
    engine = create_engine(url)
    async with create_sessionmaker(engine).begin() as session:
        rota = await seed_demo(session, now=datetime.now(UTC))
    await engine.dispose()
    return rota.tokens["app"]


def wave_env(url: str, provider_port: int, port: int) -> dict[str, str]:
    return {
        **service_env(url, provider_port),
        "SOS_SLA_SECONDS": str(SLA_SECONDS),
        "SOS_PREBREACH_SECONDS": "30",
        "SOS_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "SOS_TWILIO__ACCOUNT_SID": "AC" + "0" * 32,
        "SOS_TWILIO__AUTH_TOKEN": "wave-auth-token",
        "SOS_TWILIO__FROM_NUMBER": "+3197010000000",
        "SOS_TWILIO__API_BASE": f"http://127.0.0.1:{provider_port}",
    }


async def verdicts(url: str, *, wait_until: float) -> tuple[int, int]:
    """(reports, reports still without acknowledgement or verdict), polled until all have one."""
    engine = create_engine(url)
    try:
        while True:
            async with engine.connect() as conn:
                total = await conn.scalar(select(func.count()).select_from(Report)) or 0
                open_ = (
                    await conn.scalar(
                        select(func.count())
                        .select_from(Report)
                        .where(Report.sla_met.is_(None), Report.acknowledged_at.is_(None))
                    )
                    or 0
                )
            if open_ == 0 or time.monotonic() > wait_until:
                return total, open_
            await asyncio.sleep(2)
    finally:
        await engine.dispose()


async def sms_per_window(url: str) -> tuple[int, int, int]:
    """(most SMS one person got in any window, SMS messages sent, SMS pages that rode along in a
    bundle)."""
    engine = create_engine(url)
    async with create_sessionmaker(engine)() as session:
        rows = (
            await session.execute(
                select(Page.id, Page.staff_id, Page.sent_at, Page.bundle_id).where(
                    Page.channel == "sms", Page.sent_at.is_not(None)
                )
            )
        ).all()
    await engine.dispose()
    messages: dict[str, list[datetime]] = defaultdict(list)
    riders = 0
    for page_id, staff_id, sent_at, bundle_id in rows:
        if bundle_id is None or bundle_id == page_id:
            messages[staff_id].append(sent_at)
        else:
            riders += 1
    most = 0
    for times in messages.values():
        times.sort()
        start = 0
        for end, at in enumerate(times):
            while at - times[start] >= SMS_WINDOW:
                start += 1
            most = max(most, end - start + 1)
    return most, sum(len(t) for t in messages.values()), riders


async def run(db: str, reports: int, seconds: float, tmp: Path) -> dict[str, Any]:
    url = await fresh_database(db, tmp)
    token = await seed(url)
    provider_port, port = free_port(), free_port()
    env = wave_env(url, provider_port, port)
    workers = 1 if db == "postgres" else 0
    serve = ["-m", "app", "serve", "--port", str(port)] + (["--no-engine"] if workers else [])
    with contextlib.ExitStack() as stack:
        stack.enter_context(
            process(
                "provider", ["-m", "bench.fake_provider", "--port", str(provider_port)], env, tmp
            )
        )
        stack.enter_context(process("serve", serve, env, tmp))
        for n in range(workers):
            stack.enter_context(process(f"worker{n}", ["-m", "app", "worker"], env, tmp))
        await wait_ready(provider_port, "/_count")
        await wait_ready(port)
        client = loadgen.Client("127.0.0.1", port, connections=32)
        headers = {"Authorization": f"Bearer {token}"}

        def make(i: int) -> bytes:
            body = {"category": "fraud", "callback_phone": f"+316{40000000 + i:08d}"}
            return loadgen.request_bytes("POST", "/v1/reports", body=body, headers=headers)

        started = time.monotonic()
        result = await loadgen.open_loop(client, make, rate=reports / seconds, seconds=seconds)
        answered_in = time.monotonic() - started
        retried: dict[int, int] = {}
        waiting = result.retry_later
        for _ in range(10):  # what an app does with a 503: try again after Retry-After
            if not waiting:
                break
            await asyncio.sleep(2)
            statuses = await asyncio.gather(*(client.send(make(i)) for i in waiting))
            for status in statuses:
                retried[status] = retried.get(status, 0) + 1
            waiting = [i for i, status in zip(waiting, statuses, strict=True) if status == 503]
        await client.close()
        answers = dict(result.statuses)
        for status, n in retried.items():
            answers[status] = answers.get(status, 0) + n
        accepted = sum(n for s, n in answers.items() if 200 <= s < 300)
        total, undecided = await verdicts(
            url, wait_until=time.monotonic() + SLA_SECONDS + 120 + answered_in
        )
        most_sms, sms_sent, riders = await sms_per_window(url)
    checks = {
        "no 500 and no dropped connection": not any(
            (s >= 500 and s != 503) or s == 0 for s in answers
        ),
        "every report accepted in the end (503s retried)": not waiting and accepted == reports,
        "every 2xx report stored": total == accepted,
        "every report counted against the promise": undecided == 0,
        f"at most {SMS_LIMIT} SMS per person per window": most_sms <= SMS_LIMIT,
    }
    return {
        "db": db,
        "offered": reports,
        "offered_over_s": seconds,
        "answered_within_s": round(answered_in, 1),
        "intake": result.summary(),
        "overloaded_503_retried": len(result.retry_later),
        "stored": total,
        "undecided": undecided,
        "most_sms_one_person_one_window": most_sms,
        "sms_messages": sms_sent,
        "sms_pages_bundled": riders,
        "checks": checks,
    }


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--reports", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sos-wave-") as tmp:
        result = await run(args.db, args.reports, args.seconds, Path(tmp))
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"wave-{args.db}-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    path.write_text(json.dumps(result, indent=2))
    i = result["intake"]
    print(
        f"wave on {args.db}: {args.reports} reports offered over {args.seconds:g} s, all answered "
        f"within {result['answered_within_s']} s; statuses {i['statuses']} "
        f"({result['overloaded_503_retried']} 503s retried); latency p50 "
        f"{i['p50_ms']} ms, p99 {i['p99_ms']} ms; stored {result['stored']}; SMS: "
        f"{result['sms_messages']} messages, {result['sms_pages_bundled']} pages bundled, at most "
        f"{result['most_sms_one_person_one_window']} per person per window"
    )
    for name, ok in result["checks"].items():
        print(f"  {'ok  ' if ok else 'FAIL'} {name}")
    print(f"written to {path.relative_to(ROOT)}")
    return 0 if all(result["checks"].values()) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
