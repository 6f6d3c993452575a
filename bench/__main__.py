"""sos-router's benchmark: `python -m bench` (see the README's "Benchmark" section).

Runs on loopback only, against processes it starts and ends by pid, on PostgreSQL (the local
server, database `sos_router_bench`, dropped and created) and/or SQLite (a temporary file):

- intake: open-loop load of `POST /v1/reports` at fixed offered rates (p50/p99 from each
  request's due time) and a closed-loop run for the sustained rate; the same against the bare
  stack (bench/bare.py) in the same run, so the figures are also ratios;
- report → first page: `pages.sent_at - reports.received_at` for the intake runs' reports, with a
  loopback fake provider (bench/fake_provider.py) accepting every page;
- timers: N open escalations; a worker process idles among them (CPU share, queries/s) and then
  fires a batch of them on schedule: lateness = `claimed_at - due_at`, p50/p99/max.

Each figure is the median over `--runs` runs. A JSON result goes to bench/results/ and a table is
printed. `--check FILE` compares with limits (bench/ci.json) and exits 1 on a large regression.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, text

from app.db import create_engine, create_sessionmaker
from bench import loadgen
from bench.setup import (
    ROOT,
    cpu_seconds,
    free_port,
    fresh_database,
    process,
    seed,
    service_env,
    wait_ready,
)
from routing.db import new_id
from routing.page.models import EscalationTimer, Page
from routing.report.models import Report


def report_body(i: int) -> dict[str, Any]:
    # A different customer each time: one customer's reports join one case.
    return {"category": "fraud", "callback_phone": f"+316{20000000 + i:08d}"}


async def first_pages(url: str, since: datetime) -> list[float]:
    engine = create_engine(url)
    async with create_sessionmaker(engine)() as session:
        rows = (
            await session.execute(
                select(Report.received_at, Page.sent_at)
                .join(Page, Page.report_id == Report.id)
                .where(Page.step_no == 1, Page.attempt_no == 0, Report.received_at >= since)
            )
        ).all()
    await engine.dispose()
    return [(sent - received).total_seconds() for received, sent in rows if sent is not None]


def ms(values: list[float], q: float) -> float:
    return round(loadgen.percentile(values, q) * 1000, 2)


async def intake_against(
    port: int,
    token: str | None,
    *,
    rates: list[float],
    seconds: float,
    url: str | None,
    offset: int,
    pids: dict[str, list[int]] | None = None,
) -> dict[str, Any]:
    """`pids`: processes whose CPU time per report to measure at each fixed rate (by role)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    def make(i: int) -> bytes:
        return loadgen.request_bytes(
            "POST", "/v1/reports", body=report_body(offset + i), headers=headers
        )

    client = loadgen.Client("127.0.0.1", port, connections=64)
    out: dict[str, Any] = {"rates": {}}
    try:
        # Warm-up: connections, prepared statements, caches.
        await loadgen.open_loop(client, lambda i: make(900_000 + i), rate=50, seconds=1)
        for n, rate in enumerate(rates):
            since = datetime.now(UTC)
            cpu0 = {role: sum(map(cpu_seconds, ps)) for role, ps in (pids or {}).items()}
            result = await loadgen.open_loop(
                client, lambda i, n=n: make(n * 100_000 + i), rate=rate, seconds=seconds
            )
            entry = result.summary()
            if url is not None:
                await asyncio.sleep(2)
            # CPU time per report holds on a busy machine where rates and latencies do not.
            entry["cpu_ms_per_report"] = {
                role: round(
                    (sum(map(cpu_seconds, ps)) - cpu0[role]) * 1000 / max(entry["requests"], 1), 2
                )
                for role, ps in (pids or {}).items()
            }
            if url is not None:
                first = await first_pages(url, since)
                entry["first_page"] = {
                    "count": len(first),
                    "p50_ms": ms(first, 0.5),
                    "p99_ms": ms(first, 0.99),
                    "max_ms": round(max(first, default=float("nan")) * 1000, 2),
                }
            out["rates"][str(int(rate))] = entry
        sustained = await loadgen.closed_loop(
            client, lambda i: make(i), seconds=seconds, offset=len(rates) * 100_000
        )
        out["sustained"] = sustained.summary()
    finally:
        await client.close()
    return out


async def intake_run(db: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    provider_port, port = free_port(), free_port()
    url = await fresh_database(db, tmp)
    rota = await seed(url)
    env = service_env(url, provider_port)
    # PostgreSQL: the API in one process, paging in worker processes (the production shape, one
    # core each); SQLite: one process does both.
    workers = args.workers if db == "postgres" else 0
    serve = ["-m", "app", "serve", "--port", str(port)] + (["--no-engine"] if workers else [])
    with contextlib.ExitStack() as stack:
        stack.enter_context(
            process(
                "provider", ["-m", "bench.fake_provider", "--port", str(provider_port)], env, tmp
            )
        )
        api = stack.enter_context(process("serve", serve, env, tmp))
        engines = [
            stack.enter_context(process(f"worker{n}", ["-m", "app", "worker"], env, tmp))
            for n in range(workers)
        ]
        await wait_ready(provider_port, "/_count")
        await wait_ready(port)
        pids = {"serve": [api.pid]} | ({"workers": [w.pid for w in engines]} if engines else {})
        ours = await intake_against(
            port,
            rota.app_token,
            rates=args.rates,
            seconds=args.seconds,
            url=url,
            offset=0,
            pids=pids,
        )
    url = await fresh_database(db, tmp)
    rota = await seed(url)
    bare_port = free_port()
    bare_args = ["-m", "bench.bare", "--database-url", url, "--staff-id", rota.staff_id]
    with process("bare", [*bare_args, "--port", str(bare_port)], env, tmp) as bare_process:
        await wait_ready(bare_port, "/docs")
        bare = await intake_against(
            bare_port,
            None,
            rates=args.rates,
            seconds=args.seconds,
            url=None,
            offset=0,
            pids={"serve": [bare_process.pid]},
        )
    return {"sos_router": ours, "bare": bare}


async def seed_open_escalations(
    url: str, *, open_: int, fire: int, fire_from: datetime, fire_over: float, first: int = 0
) -> None:
    """`open_` open reports with their deadline timer a day away, and `fire` more whose deadline
    timers fall due evenly over `fire_over` seconds from `fire_from` (firing records the broken
    promise: a real transaction per timer)."""
    now = datetime.now(UTC)
    engine = create_engine(url)
    total = open_ + fire
    batch = 5000
    async with engine.begin() as conn:
        for start in range(0, total, batch):
            reports, timers = [], []
            for n in range(start, min(total, start + batch)):
                due = (
                    now + timedelta(days=1)
                    if n < open_
                    else fire_from + timedelta(seconds=fire_over * (n - open_) / max(fire, 1))
                )
                i = first + n
                rid = new_id()
                reports.append(
                    {
                        "id": rid,
                        "reference": f"B{i:011d}",
                        "category": "fraud",
                        "channel": "app",
                        "language": "nl",
                        "callback_phone": f"+316{30000000 + i:08d}",
                        "status": "open",
                        "received_at": due - timedelta(minutes=10),
                        "deadline_at": due,
                        "is_exhausted": False,
                        "attempt_base": 0,
                        "contacts": 1,
                    }
                )
                timers.append(
                    {
                        "report_id": rid,
                        "kind": "deadline",
                        "step_no": 0,
                        "attempt_no": 0,
                        "due_at": due,
                        "state": "pending",
                        "fence": 0,
                        "created_at": now,
                    }
                )
            await conn.execute(insert(Report), reports)
            await conn.execute(insert(EscalationTimer), timers)
        if url.startswith("postgresql"):
            await conn.execute(text("ANALYZE"))
    await engine.dispose()


async def transactions(url: str) -> int | None:
    if not url.startswith("postgresql"):
        return None
    engine = create_engine(url)
    async with engine.connect() as conn:
        value = await conn.scalar(
            text(
                "SELECT xact_commit + xact_rollback FROM pg_stat_database "
                "WHERE datname = current_database()"
            )
        )
    await engine.dispose()
    return int(value or 0)


async def timer_run(db: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    url = await fresh_database(db, tmp)
    await seed(url)
    idle_seconds = args.idle_seconds
    await seed_open_escalations(
        url, open_=args.open, fire=0, fire_from=datetime.now(UTC), fire_over=0
    )
    # The few that fire are seeded last, so their schedule does not depend on the seeding time.
    fire_from = datetime.now(UTC) + timedelta(seconds=idle_seconds + 8)
    await seed_open_escalations(
        url, open_=0, fire=args.fire, fire_from=fire_from, fire_over=args.fire_over, first=args.open
    )
    env = service_env(url, free_port())
    with process("worker", ["-m", "app", "worker"], env, tmp) as worker:
        await asyncio.sleep(4)  # start-up and first ticks
        cpu0, tx0, t0 = cpu_seconds(worker.pid), await transactions(url), time.monotonic()
        await asyncio.sleep(idle_seconds)
        cpu1, tx1, t1 = cpu_seconds(worker.pid), await transactions(url), time.monotonic()
        wait_until = fire_from + timedelta(seconds=args.fire_over + 60)
        engine = create_engine(url)
        fired = 0
        while datetime.now(UTC) < wait_until:
            async with engine.connect() as conn:
                fired = (
                    await conn.scalar(
                        select(text("count(*)"))
                        .select_from(EscalationTimer)
                        .where(EscalationTimer.state == "done")
                    )
                    or 0
                )
            if fired >= args.fire:
                break
            await asyncio.sleep(1)
        async with create_sessionmaker(engine)() as session:
            rows = (
                await session.execute(
                    select(EscalationTimer.due_at, EscalationTimer.claimed_at).where(
                        EscalationTimer.claimed_at.is_not(None)
                    )
                )
            ).all()
        await engine.dispose()
    late = [max(0.0, (claimed - due).total_seconds()) for due, claimed in rows]
    window = t1 - t0
    queries = (tx1 - tx0 - 1) / window if tx0 is not None and tx1 is not None else None
    return {
        "open": args.open,
        "fired": len(late),
        "offered_fires_per_s": round(args.fire / args.fire_over, 1),
        "lateness": {
            "p50_ms": ms(late, 0.5),
            "p99_ms": ms(late, 0.99),
            "max_ms": round(max(late, default=float("nan")) * 1000, 2),
        },
        "idle": {
            "seconds": round(window, 1),
            "cpu_percent": round((cpu1 - cpu0) / window * 100, 2),
            "transactions_per_s": None if queries is None else round(queries, 2),
        },
    }


def median_of(runs: list[dict[str, Any]], *path: str) -> float | None:
    values = []
    for run in runs:
        value: Any = run
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, int | float):
            values.append(float(value))
    return round(statistics.median(values), 2) if values else None


def summarise(
    db: str, intake: list[dict[str, Any]], timers: list[dict[str, Any]], rates: list[float]
) -> dict[str, Any]:
    out: dict[str, Any] = {"db": db, "intake": {}, "timers": {}}
    for rate in rates if intake else []:
        r = str(int(rate))
        ours = ("sos_router", "rates", r)
        bare = ("bare", "rates", r)
        out["intake"][r] = {
            "p50_ms": median_of(intake, *ours, "p50_ms"),
            "p99_ms": median_of(intake, *ours, "p99_ms"),
            "achieved_rate": median_of(intake, *ours, "achieved_rate"),
            "errors": sum(
                n
                for run in intake
                for s, n in run["sos_router"]["rates"][r]["statuses"].items()
                if not s.startswith("2")
            ),
            "bare_errors": sum(
                n
                for run in intake
                for s, n in run["bare"]["rates"][r]["statuses"].items()
                if not s.startswith("2")
            ),
            "bare_p50_ms": median_of(intake, *bare, "p50_ms"),
            "bare_p99_ms": median_of(intake, *bare, "p99_ms"),
            "first_page_p50_ms": median_of(intake, *ours, "first_page", "p50_ms"),
            "first_page_p99_ms": median_of(intake, *ours, "first_page", "p99_ms"),
            "cpu_ms_per_report": {
                role: median_of(intake, *ours, "cpu_ms_per_report", role)
                for role in ("serve", "workers")
                if median_of(intake, *ours, "cpu_ms_per_report", role) is not None
            },
            "bare_cpu_ms_per_report": median_of(intake, *bare, "cpu_ms_per_report", "serve"),
        }
    ours_rate = median_of(intake, "sos_router", "sustained", "achieved_rate")
    bare_rate = median_of(intake, "bare", "sustained", "achieved_rate")
    out["sustained"] = {
        "reports_per_s": ours_rate,
        "bare_reports_per_s": bare_rate,
        "ratio_to_bare": round(ours_rate / bare_rate, 3) if ours_rate and bare_rate else None,
    }
    if timers:
        out["timers"] = {
            "open": timers[0]["open"],
            "offered_fires_per_s": timers[0]["offered_fires_per_s"],
            "lateness_p50_ms": median_of(timers, "lateness", "p50_ms"),
            "lateness_p99_ms": median_of(timers, "lateness", "p99_ms"),
            "lateness_max_ms": median_of(timers, "lateness", "max_ms"),
            "idle_cpu_percent": median_of(timers, "idle", "cpu_percent"),
            "idle_transactions_per_s": median_of(timers, "idle", "transactions_per_s"),
        }
    return out


def table(summary: dict[str, Any]) -> str:
    lines = [f"\n== {summary['db']} =="]
    lines.append(
        f"{'offered/s':>10} {'achieved':>9} {'p50 ms':>8} {'p99 ms':>8} {'bare p99':>9} "
        f"{'1st page p50':>13} {'1st page p99':>13} {'errors':>7}  CPU ms per report"
    )
    for rate, r in summary["intake"].items():
        cpu = ", ".join(f"{role} {v}" for role, v in r["cpu_ms_per_report"].items())
        cpu += f" (bare {r['bare_cpu_ms_per_report']})"
        lines.append(
            f"{rate:>10} {r['achieved_rate']!s:>9} {r['p50_ms']!s:>8} {r['p99_ms']!s:>8} "
            f"{r['bare_p99_ms']!s:>9} {r['first_page_p50_ms']!s:>13} "
            f"{r['first_page_p99_ms']!s:>13} {r['errors']!s:>7}  {cpu}"
        )
    s = summary["sustained"]
    lines.append(
        f"sustained intake: {s['reports_per_s']} reports/s; bare stack "
        f"{s['bare_reports_per_s']}/s; ratio {s['ratio_to_bare']}"
    )
    if t := summary["timers"]:
        lines.append(
            f"timers ({t['open']} open, {t['offered_fires_per_s']} fires/s): lateness p50 "
            f"{t['lateness_p50_ms']} ms, p99 {t['lateness_p99_ms']} ms, max "
            f"{t['lateness_max_ms']} ms; idle {t['idle_cpu_percent']} % CPU, "
            f"{t['idle_transactions_per_s']} transactions/s"
        )
    return "\n".join(lines)


def check(summaries: list[dict[str, Any]], limits_file: Path) -> list[str]:
    """Limits are far from the measured figures: they catch a large regression, not noise."""
    limits = json.loads(limits_file.read_text())
    problems = []
    for summary in summaries:
        own = limits.get(summary["db"], {})
        s, t = summary["sustained"], summary["timers"]
        if (ratio := s["ratio_to_bare"]) is not None and ratio < own.get("min_ratio_to_bare", 0):
            problems.append(
                f"{summary['db']}: intake ratio to bare {ratio} < {own['min_ratio_to_bare']}"
            )
        for rate, r in summary["intake"].items():
            if r["errors"]:
                problems.append(f"{summary['db']}: {r['errors']} non-2xx answers at {rate}/s")
            if r["bare_errors"]:
                problems.append(f"{summary['db']}: the bare stack failed {r['bare_errors']} times")
            if (p99 := r["first_page_p99_ms"]) is not None and p99 > own.get(
                "max_first_page_p99_ms", 1e9
            ):
                problems.append(f"{summary['db']}: first page p99 {p99} ms at {rate}/s")
            # CPU time per report holds on a busy machine where latencies do not.
            ours, bare = sum(r["cpu_ms_per_report"].values()), r["bare_cpu_ms_per_report"]
            if bare and ours / bare > own.get("max_cpu_ratio_to_bare", 1e9):
                problems.append(
                    f"{summary['db']}: {ours:.1f} ms of CPU per report at {rate}/s, "
                    f"{ours / bare:.1f} times the bare stack's {bare} ms"
                )
        if (
            t
            and (p99 := t["lateness_p99_ms"]) is not None
            and p99 > own.get("max_lateness_p99_ms", 1e9)
        ):
            problems.append(f"{summary['db']}: timer lateness p99 {p99} ms")
        if (
            t
            and (cpu := t["idle_cpu_percent"]) is not None
            and cpu > own.get("max_idle_cpu_percent", 100)
        ):
            problems.append(f"{summary['db']}: idle CPU {cpu} %")
    return problems


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["postgres", "sqlite", "both"], default="both")
    parser.add_argument(
        "--rates", type=lambda s: [float(x) for x in s.split(",")], default=[200.0, 500.0, 1000.0]
    )
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--open", type=int, default=100_000, help="open escalations")
    parser.add_argument("--fire", type=int, default=30_000, help="timers fired in the run")
    parser.add_argument("--fire-over", type=float, default=30, help="seconds they fall due over")
    parser.add_argument("--idle-seconds", type=float, default=20)
    parser.add_argument("--skip-timers", action="store_true")
    parser.add_argument("--skip-intake", action="store_true")
    parser.add_argument(
        "--workers", type=int, default=1, help="worker processes beside the API (PostgreSQL)"
    )
    parser.add_argument("--check", type=Path, help="limits file (e.g. bench/ci.json)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="the small CI version: one run, 20/s for 3 s, 10,000 open escalations",
    )
    args = parser.parse_args()
    if args.quick:
        args.runs, args.rates, args.seconds = 1, [20.0], 3.0
        args.open, args.fire, args.fire_over, args.idle_seconds = 10_000, 500, 10.0, 5.0
    dbs = ["postgres", "sqlite"] if args.db == "both" else [args.db]
    summaries, raw = [], {}
    with tempfile.TemporaryDirectory(prefix="sos-bench-") as tmp_name:
        tmp = Path(tmp_name)
        for db in dbs:
            intake = (
                []
                if args.skip_intake
                else [await intake_run(db, args, tmp) for _ in range(args.runs)]
            )
            timers = (
                []
                if args.skip_timers
                else [await timer_run(db, args, tmp) for _ in range(args.runs)]
            )
            raw[db] = {"intake": intake, "timers": timers}
            summaries.append(summarise(db, intake, timers, args.rates))
            print(table(summaries[-1]), flush=True)
    result = {
        "at": datetime.now(UTC).isoformat(),
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "summary": summaries,
        "runs": raw,
    }
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"bench-{args.db}-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    path.write_text(json.dumps(result, indent=2))
    print(f"\nwritten to {path.relative_to(ROOT)}")
    if args.check:
        problems = check(summaries, args.check)
        for problem in problems:
            print(f"REGRESSION: {problem}", file=sys.stderr)
        return 1 if problems else 0
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
