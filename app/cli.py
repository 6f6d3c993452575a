"""The `sos-router` command: serve, worker, migrate, token create/revoke/list, rota import, audit
verify, keys rotate, demo."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from datetime import timedelta

import pydantic

from app import logs, migrate
from app.settings import Settings

log = logging.getLogger("sos_router")


def _logging(settings: Settings) -> None:
    """Our loggers and uvicorn's (run it with `log_config=None`) through one masked handler."""
    logs.setup(level=settings.log_level, log_format=settings.log_format)


async def _seed_if_empty(settings: Settings) -> None:
    from app.db import create_engine, create_sessionmaker
    from app.seed import is_empty, seed_demo
    from routing.clock import SystemClock

    engine = create_engine(settings.database_url)
    try:
        async with create_sessionmaker(engine).begin() as session:
            if not await is_empty(session):
                return
            rota = await seed_demo(session, now=SystemClock().now())
    finally:
        await engine.dispose()
    print(
        "\nEmpty database: seeded the DEMO rota (3 demo staff, chain "
        f"'{rota.chain.name}'), paging the simulated phones."
    )
    print("Demo tokens (shown once; use as 'Authorization: Bearer <token>'):")
    for role, token in rota.tokens.items():
        print(f"  {role:<32} {token}")
    print()


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from app.container import build
    from app.main import create_app

    settings = Settings()
    _logging(settings)
    migrate.upgrade(settings.database_url)
    container = build(settings)  # installs the key ring the seed's staff phones need
    if settings.seed_demo:
        asyncio.run(_seed_if_empty(settings))
    app = create_app(container, run_engine=not args.no_engine)
    uvicorn.run(
        app,
        host=args.host if args.host is not None else settings.host,
        port=args.port if args.port is not None else settings.port,
        log_level=settings.log_level.lower(),
        log_config=None,
    )
    return 0


async def _run_worker(settings: Settings) -> None:
    from app.container import build

    container = build(settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, container.engine.stop)
    try:
        await container.start(run_engine=True)
        await container.engine.run_forever()
    finally:
        await container.close()


def _serve_worker(settings: Settings, host: str, port: int) -> None:
    """The engine loop inside a tiny HTTP server for probes and scrapes; uvicorn's signal
    handling stops the server, and its shutdown stops the engine."""
    import uvicorn

    from app.container import build
    from app.main import create_monitor_app

    uvicorn.run(
        create_monitor_app(build(settings)),
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
        log_config=None,
        access_log=False,  # a scrape every few seconds is not news
    )


def cmd_worker(args: argparse.Namespace) -> int:
    settings = Settings()
    _logging(settings)
    current = asyncio.run(migrate.current_revision(settings.database_url))
    if current != migrate.head_revision():
        # Several workers must not race to migrate; `serve` or `migrate` does it once.
        print(
            f"error: the database schema is at {current or 'nothing'}, not "
            f"{migrate.head_revision()}: run `sos-router migrate` first",
            file=sys.stderr,
        )
        return 2
    if args.metrics_port is None:
        import uvloop  # the loop uvicorn runs `serve` on: cheaper sockets and callbacks

        uvloop.run(_run_worker(settings))
    else:
        _serve_worker(settings, args.metrics_host, args.metrics_port)
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = Settings()
    if args.downgrade:
        migrate.downgrade(settings.database_url, args.downgrade)
    else:
        migrate.upgrade(settings.database_url, args.revision)
    current = asyncio.run(migrate.current_revision(settings.database_url))
    print(f"database at revision {current or 'base (empty)'}")
    return 0


def expires_in(text: str) -> timedelta:
    """`90d`, `12h`, `30m` or `45s`: a positive duration (argparse type of `--expires-in`)."""
    unit = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}.get(text[-1:].lower())
    try:
        amount = int(text[:-1])
    except ValueError:
        amount = 0
    if unit is None or not 0 < amount <= 36500 * 86400:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 90d, 12h or 30m")
    return timedelta(**{unit: amount})


async def _token_command(settings: Settings, args: argparse.Namespace) -> int:
    from app.db import create_engine, create_sessionmaker
    from routing.auth import service as auth_service
    from routing.clock import SystemClock
    from routing.types import Role

    now = SystemClock().now()
    engine = create_engine(settings.database_url)
    try:
        async with create_sessionmaker(engine).begin() as session:
            if args.token_command == "create":
                expiry = args.expires_in
                secret, token = await auth_service.create(
                    session,
                    role=Role(args.role),
                    staff_id=args.staff_id,
                    name=args.name or "",
                    now=now,
                    expires_at=now + expiry if expiry else None,
                    actor="cli",
                )
                print(secret)
                until = f", expires {token.expires_at:%Y-%m-%d %H:%M} UTC" if expiry else ""
                print(f"token id {token.id}{until}", file=sys.stderr)
            elif args.token_command == "revoke":
                given = sys.stdin.readline().strip() if args.secret else None
                token = await auth_service.revoke(
                    session, now=now, token_id=args.token_id, secret=given
                )
                print(f"token {token.id} ({token.role}) revoked")
            else:
                for token in await auth_service.list_all(session):
                    state = (
                        "revoked"
                        if token.revoked_at
                        else "expired"
                        if token.expires_at and token.expires_at <= now
                        else "active"
                    )
                    expires = f"{token.expires_at:%Y-%m-%d %H:%M}" if token.expires_at else "never"
                    print(
                        f"{token.id}  {token.role:<5}  {state:<7}  expires {expires}  "
                        f"{token.name or '-'}  staff {token.staff_id or '-'}"
                    )
    finally:
        await engine.dispose()
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from routing.errors import RoutingError

    settings = Settings()
    migrate.upgrade(settings.database_url)
    try:
        return asyncio.run(_token_command(settings, args))
    except RoutingError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2


async def _simulate(settings: Settings, args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from app.db import create_engine, create_sessionmaker
    from routing.clock import SystemClock
    from routing.errors import RoutingError
    from routing.page.models import Page
    from routing.report import service as report_service
    from routing.report.models import Report
    from routing.staff.models import Staff

    engine = create_engine(settings.database_url)
    try:
        async with create_sessionmaker(engine).begin() as session:
            if args.simulate_command == "pages":
                rows = (
                    await session.execute(
                        select(Page, Staff.name, Report.reference)
                        .join(Staff, Staff.id == Page.staff_id)
                        .join(Report, Report.id == Page.report_id)
                        .where(Report.acknowledged_at.is_(None))
                        .order_by(Page.id.desc())
                        .limit(20)
                    )
                ).all()
                if not rows:
                    print("no pages waiting for an answer")
                for page, name, reference in rows:
                    print(
                        f"page {page.id:>6}  report {reference}  {page.channel:<5} to {name}"
                        f"  ({page.state})"
                    )
                return 0
            chosen = await session.get(Page, args.page_id)
            if chosen is None:
                print(f"error: no page {args.page_id}", file=sys.stderr)
                return 2
            try:
                report = await report_service.acknowledge(
                    session,
                    report_id=chosen.report_id,
                    staff_id=chosen.staff_id,
                    now=SystemClock().now(),
                    how=f"simulated {chosen.channel}",
                )
            except RoutingError as exc:
                print(f"error: {exc.message}", file=sys.stderr)
                return 1
            print(
                f"report {report.reference} accepted; promise "
                f"{'met' if report.sla_met else 'missed'}"
            )
            return 0
    finally:
        await engine.dispose()


def cmd_simulate(args: argparse.Namespace) -> int:
    from app import keys

    settings = Settings()
    keys.install(settings, warn=False)
    return asyncio.run(_simulate(settings, args))


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    from app import keys

    settings = Settings()
    _logging(settings)
    migrate.upgrade(settings.database_url)
    return asyncio.run(keys.rotate(settings, batch=args.batch, say=print))


def cmd_rota_import(args: argparse.Namespace) -> int:
    from app import rota_import

    return rota_import.main(args.file)


async def _verify_audit(settings: Settings) -> int:
    from app.db import create_engine, create_sessionmaker
    from routing.audit.verify import verify

    engine = create_engine(settings.database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            verdict = await verify(session)
    finally:
        await engine.dispose()
    print("\n".join(verdict.lines()))
    return 0 if verdict.ok else 1


def cmd_audit_verify(args: argparse.Namespace) -> int:
    del args
    return asyncio.run(_verify_audit(Settings()))


def cmd_demo(args: argparse.Namespace) -> int:
    from app import demo

    logging.basicConfig(level=logging.WARNING)
    return demo.main(args.database_url)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sos-router", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the API and the escalation engine")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.add_argument(
        "--no-engine",
        action="store_true",
        help="serve the API only and leave paging to `sos-router worker` processes",
    )
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="run only the escalation engine")
    worker.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        metavar="PORT",
        help="also serve /healthz, /readyz and /metrics on this port",
    )
    worker.add_argument(
        "--metrics-host",
        default="127.0.0.1",
        metavar="HOST",
        help="the address for --metrics-port (default 127.0.0.1)",
    )
    worker.set_defaults(func=cmd_worker)

    mig = sub.add_parser("migrate", help="upgrade (or downgrade) the database schema")
    mig.add_argument("--revision", default="head")
    mig.add_argument("--downgrade", metavar="REVISION", default=None)
    mig.set_defaults(func=cmd_migrate)

    token = sub.add_parser("token", help="manage API tokens")
    token_sub = token.add_subparsers(dest="token_command", required=True)
    create = token_sub.add_parser(
        "create",
        help="create a token and print it (shown once); its id goes to stderr",
    )
    create.add_argument("--role", required=True, choices=["app", "staff", "admin"])
    create.add_argument("--staff-id", default=None)
    create.add_argument("--name", default=None)
    create.add_argument(
        "--expires-in",
        type=expires_in,
        default=None,
        metavar="DURATION",
        help="refuse the token after this long: 90d, 12h, 30m (default: never)",
    )
    create.set_defaults(func=cmd_token)
    revoke = token_sub.add_parser(
        "revoke",
        help="revoke a token at once, and end its console sessions",
        description="Revoke by the token's id (from `token list` or `token create`), or with "
        "--secret by the token itself, read from standard input so that it stays out of the "
        "shell history and the process list.",
    )
    which = revoke.add_mutually_exclusive_group(required=True)
    which.add_argument("token_id", nargs="?", default=None, metavar="TOKEN_ID")
    which.add_argument(
        "--secret", action="store_true", help="read the token's secret from standard input"
    )
    revoke.set_defaults(func=cmd_token)
    token_sub.add_parser(
        "list", help="list tokens: id, role, state, expiry, name, staff (never a secret)"
    ).set_defaults(func=cmd_token)

    rota = sub.add_parser("rota", help="manage the rota: staff, schedules and chains")
    rota_sub = rota.add_subparsers(dest="rota_command", required=True)
    rota_import = rota_sub.add_parser(
        "import",
        help="load staff, schedules and chains from a YAML file (all or nothing)",
        description="Check the whole file first; any problem is printed as FILE:LINE: field: "
        "message and nothing is stored (exit 1). Staff are matched by phone number, schedules "
        "by name; chains are always new.",
    )
    rota_import.add_argument("file", metavar="FILE.yaml")
    rota_import.set_defaults(func=cmd_rota_import)

    audit = sub.add_parser("audit", help="check the audit log")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    audit_sub.add_parser(
        "verify",
        help="check the audit log's hash chain; exit 1 naming the first broken link",
        description="Recompute the hash chain over the audit events from the first seal and "
        "check every sealed event against it. Prints the first broken link (seal, event, what is "
        "wrong) and exits 1, or the number of sealed events and the chain's head and exits 0. "
        "Also says how many events are not sealed yet (the engine seals them within seconds).",
    ).set_defaults(func=cmd_audit_verify)
    keys = sub.add_parser("keys", help="manage the keys personal data is encrypted with")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    rotate = keys_sub.add_parser(
        "rotate",
        help="re-encrypt every phone number and description with the current key",
        description="Rewrites every encrypted value under the first key of "
        "SOS_PRIVACY__DATA_KEYS (values stored before encryption are encrypted too) and sets "
        "every phone lookup hash, a batch per transaction; prints counts per table. Safe to "
        "run while the service runs, and again: an interrupted run resumes. Afterwards the "
        "other keys can be removed.",
    )
    rotate.add_argument("--batch", type=int, default=500, help="rows per transaction")
    rotate.set_defaults(func=cmd_keys_rotate)

    sim = sub.add_parser("simulate", help="act as a staff member on the simulated phones")
    sim_sub = sim.add_subparsers(dest="simulate_command", required=True)
    sim_sub.add_parser("pages", help="list pages waiting for an answer").set_defaults(
        func=cmd_simulate
    )
    accept = sim_sub.add_parser("accept", help="press 1 on a page: accept its report")
    accept.add_argument("page_id", type=int)
    accept.set_defaults(func=cmd_simulate)

    demo = sub.add_parser("demo", help="run one simulated emergency end to end")
    demo.add_argument(
        "--database-url",
        default=None,
        help="run on this database instead of a throwaway SQLite file",
    )
    demo.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        try:
            return int(args.func(args))
        except pydantic.ValidationError as exc:
            problems = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
            print(f"configuration error: {problems}", file=sys.stderr)
            return 2
    return 130
