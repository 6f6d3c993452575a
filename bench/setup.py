"""What every benchmark needs: a fresh database, the bench rota, processes started and ended by pid.

The bench rota is one responder paged in chat first (chat pages have no per-person limits, so the
figures measure the engine, not the wave limits that protect a person's phone), then by SMS.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

from app import keys, migrate
from app.db import create_engine, create_sessionmaker
from app.settings import Settings
from tests import keys as bench_keys

# Personal data is encrypted: the benchmarks use the test suite's fixed keys (in this process, for
# the seeding, and in every process it starts).
bench_keys.use()

ROOT = Path(__file__).resolve().parent.parent
PG_SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432"
PG_BENCH_DB = "sos_router_bench"


@dataclass(frozen=True)
class Rota:
    staff_id: str
    app_token: str


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def fresh_database(db: str, tmp: Path) -> str:
    """An empty, migrated database: `sos_router_bench` on the local PostgreSQL, or a file."""
    if db == "postgres":
        engine = create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
        async with engine.connect() as conn:
            await conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {PG_BENCH_DB} WITH (FORCE)")
            await conn.exec_driver_sql(f"CREATE DATABASE {PG_BENCH_DB}")
        await engine.dispose()
        url = f"{PG_SERVER}/{PG_BENCH_DB}"
    else:
        url = f"sqlite+aiosqlite:///{tmp / f'bench-{uuid.uuid4().hex[:8]}.db'}"
    await migrate.upgrade_async(url)
    return url


async def seed(url: str) -> Rota:
    from routing.auth import service as auth_service
    from routing.chain import service as chain_service
    from routing.chain.schemas import ChainCreate
    from routing.staff import service as staff_service
    from routing.staff.schemas import StaffCreate
    from routing.types import Role

    now = datetime.now(UTC)
    keys.install(Settings(database_url=url), warn=False)
    engine = create_engine(url)
    async with create_sessionmaker(engine).begin() as session:
        staff = await staff_service.create(
            session,
            now=now,
            data=StaffCreate.model_validate(
                {"name": "Bench Responder", "phone": "+31612340000", "chat_id": "UBENCH"}
            ),
        )
        await chain_service.create(
            session,
            now=now,
            data=ChainCreate.model_validate(
                {
                    "name": "Bench chain",
                    "steps": [
                        {"channel": "chat", "targets": [staff.id], "wait_seconds": 60},
                        {"channel": "sms", "targets": [staff.id], "wait_seconds": 60},
                    ],
                }
            ),
        )
        token, _ = await auth_service.create(session, role=Role.APP, now=now, name="bench")
    await engine.dispose()
    return Rota(staff.id, token)


def service_env(url: str, provider_port: int) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "SOS_DATABASE_URL": url,
        "SOS_SEED_DEMO": "false",
        "SOS_LOG_LEVEL": "WARNING",
        "SOS_SLACK__API_BASE": f"http://127.0.0.1:{provider_port}/api",
        "SOS_SLACK__BOT_TOKEN": "xoxb-bench",
        "SOS_SLACK__SIGNING_SECRET": "bench-signing-secret",
    }


@contextlib.contextmanager
def process(
    name: str, args: list[str], env: dict[str, str], cwd: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """A process we start (`python ARGS`, output in CWD/NAME.log), ended by its pid: SIGTERM,
    then SIGKILL after 10 s."""
    log = (cwd / f"{name}-{time.time_ns()}.log").open("wb")
    proc = subprocess.Popen([sys.executable, *args], env=env, cwd=cwd, stdout=log, stderr=log)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()


async def wait_ready(port: int, path: str = "/healthz", *, within: float = 60) -> None:
    deadline = time.monotonic() + within
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"http://127.0.0.1:{port}{path}")).status_code < 500:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"nothing answered on port {port} within {within:g} s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
