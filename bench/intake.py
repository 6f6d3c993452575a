"""Intake benchmark: an open-loop load of `POST /v1/reports` against a real `sos-router serve`
on 127.0.0.1, with the simulated phones, on SQLite or PostgreSQL.

Measures, per run:
- intake latency (from the *intended* send time, so a slow server cannot hide its queue:
  no coordinated omission), p50/p99/max, and the achieved rate;
- report → first page: `pages.sent_at - reports.received_at` from the database;
- a baseline at the same rate against `GET /healthz`, so results can be read as ratios on a
  shared, noisy machine.

Prints a table of medians over `--runs` runs and writes JSON to bench/results/.

    python bench/intake.py --db sqlite --rate 200 --seconds 10 --runs 3
    python bench/intake.py --db postgres --rate 500 --seconds 10 --runs 3

Everything runs on loopback; the server is a process this script starts and ends by its pid.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from app.db import create_engine, create_sessionmaker
from routing.page.models import Page
from routing.report.models import Report

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
PG_BENCH = "postgresql+asyncpg://postgres@127.0.0.1:5432/sos_router_bench"


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def reset_postgres() -> None:
    engine = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.exec_driver_sql("DROP DATABASE IF EXISTS sos_router_bench WITH (FORCE)")
        await conn.exec_driver_sql("CREATE DATABASE sos_router_bench")
    await engine.dispose()


async def open_loop(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    rate: float,
    seconds: float,
    body: Callable[[int], dict[str, Any]] | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """Fire requests on a fixed schedule; latency counts from when each request was due.
    `body(i)` gives the i-th request's JSON body."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    total = int(rate * seconds)
    start = time.perf_counter()

    async def one(i: int) -> None:
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        try:
            json = body(i) if body else kwargs.get("json")
            r = await client.request(method, url, **{**kwargs, "json": json})
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
        except httpx.HTTPError:
            statuses[0] = statuses.get(0, 0) + 1
        latencies.append(time.perf_counter() - due)

    await asyncio.gather(*(one(i) for i in range(total)))
    elapsed = time.perf_counter() - start
    return {
        "requests": total,
        "statuses": statuses,
        "achieved_rate": total / elapsed,
        "p50_ms": pct(latencies, 0.5) * 1000,
        "p99_ms": pct(latencies, 0.99) * 1000,
        "max_ms": max(latencies) * 1000,
    }


async def first_page_latencies(url: str) -> list[float]:
    engine = create_engine(url)
    async with create_sessionmaker(engine)() as session:
        rows = (
            await session.execute(
                select(Report.received_at, Page.sent_at)
                .join(Page, Page.report_id == Report.id)
                .where(Page.step_no == 1, Page.attempt_no == 0, Page.target_no == 0)
            )
        ).all()
    await engine.dispose()
    return [(sent - received).total_seconds() for received, sent in rows if sent is not None]


async def one_run(db: str, rate: float, seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="sos-bench-") as tmp:
        if db == "postgres":
            await reset_postgres()
            url = PG_BENCH
        else:
            url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        port = free_port()
        env = {
            **os.environ,
            "SOS_DATABASE_URL": url,
            "SOS_LOG_LEVEL": "WARNING",
            "SOS_SEED_DEMO": "true",
        }
        # The server starts once per run, outside the measured window: blocking here is fine.
        proc = subprocess.Popen(  # noqa: ASYNC220
            [sys.executable, "-m", "app", "serve", "--port", str(port)],
            cwd=tmp,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            token = ""
            deadline = time.monotonic() + 30
            assert proc.stdout is not None
            while time.monotonic() < deadline and not token:
                line = proc.stdout.readline()
                if m := re.match(r"\s+app\s+(sos_\S+)", line):
                    token = m.group(1)
            assert token, "server did not print an app token"
            base = f"http://127.0.0.1:{port}"
            limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
            async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
                for _ in range(100):
                    try:
                        if (await client.get("/healthz")).status_code == 200:
                            break
                    except httpx.HTTPError:
                        await asyncio.sleep(0.1)
                baseline = await open_loop(client, "GET", "/healthz", rate, seconds)
                intake = await open_loop(
                    client,
                    "POST",
                    "/v1/reports",
                    rate,
                    seconds,
                    headers={"Authorization": f"Bearer {token}"},
                    # A different customer each time: one customer's reports join one case.
                    body=lambda i: {"category": "fraud", "callback_phone": f"06{20000000 + i}"},
                )
            await asyncio.sleep(2)
            first = await first_page_latencies(url)
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
    return {
        "baseline": baseline,
        "intake": intake,
        "first_page": {
            "count": len(first),
            "p50_ms": pct(first, 0.5) * 1000,
            "p99_ms": pct(first, 0.99) * 1000,
            "max_ms": (max(first) if first else float("nan")) * 1000,
        },
    }


def median(runs: list[dict[str, Any]], *path: str) -> float:
    values = []
    for run in runs:
        value: Any = run
        for key in path:
            value = value[key]
        values.append(float(value))
    return statistics.median(values)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    runs = [await one_run(args.db, args.rate, args.seconds) for _ in range(args.runs)]
    summary = {
        key: median(runs, *path)
        for key, path in {
            "baseline_p50_ms": ("baseline", "p50_ms"),
            "baseline_p99_ms": ("baseline", "p99_ms"),
            "intake_rate": ("intake", "achieved_rate"),
            "intake_p50_ms": ("intake", "p50_ms"),
            "intake_p99_ms": ("intake", "p99_ms"),
            "first_page_p50_ms": ("first_page", "p50_ms"),
            "first_page_p99_ms": ("first_page", "p99_ms"),
        }.items()
    }
    summary["intake_p99_over_baseline_p99"] = summary["intake_p99_ms"] / summary["baseline_p99_ms"]
    result = {
        "at": datetime.now(UTC).isoformat(),
        "args": vars(args),
        "runs": runs,
        "median": summary,
    }
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"intake-{args.db}-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    path.write_text(json.dumps(result, indent=2))
    print(
        f"\nintake on {args.db}, {args.rate:g}/s for {args.seconds:g} s, median of {args.runs} runs"
    )
    for key, value in summary.items():
        print(f"  {key:<32} {value:10.2f}")
    statuses = [run["intake"]["statuses"] for run in runs]
    print(f"  intake statuses per run: {statuses}")
    print(f"  written to {path.relative_to(ROOT)}")


if __name__ == "__main__":
    asyncio.run(main())
