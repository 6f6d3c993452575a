"""The `sos-router` command, run for real in a subprocess: `python -m app` always, and the installed
console script too when it sits next to this Python (an installed checkout, as in CI).

Every run gets a temporary directory as its working directory and no `SOS_*` settings from the
environment except the ones a test gives it, so the default `./sos-router.db` lands in that
directory and nothing leaks in from the developer's shell.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 60  # seconds, for any one command that should finish by itself
SCRIPT = shutil.which("sos-router", path=str(Path(sys.executable).parent))
TOKEN_LINE = re.compile(r"^\s+(?P<role>\S.*?)\s+(?P<token>sos_\S+)\s*$", re.MULTILINE)


@pytest.fixture(params=["python -m app", "sos-router script"])
def sos_router(request: pytest.FixtureRequest) -> list[str]:
    if request.param == "python -m app":
        return [sys.executable, "-m", "app"]
    if SCRIPT is None:
        pytest.skip(f"no sos-router script next to {sys.executable} (not installed)")
    return [SCRIPT]


def _env(database_url: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOS_")}
    # `python -m app` must import this checkout even when it is not installed.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    if database_url is not None:
        env["SOS_DATABASE_URL"] = database_url
    return env


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    return cwd


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"


def _run(cmd: list[str], *args: str, cwd: Path, db_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*cmd, *args],
        cwd=cwd,
        env=_env(db_url),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def _tables(db_file: Path) -> set[str]:
    with contextlib.closing(sqlite3.connect(db_file)) as conn:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {name for (name,) in rows}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop the one process this test started, by its pid: SIGTERM, then SIGKILL."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    try:
        yield procs
    finally:
        for proc in procs:
            _stop(proc)


def _wait_for(
    predicate: Callable[[], bool], proc: subprocess.Popen[bytes], what: str, log: Path
) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"exited with {proc.returncode} before {what}:\n{log.read_text()}")
        if predicate():
            return
        time.sleep(0.2)
    pytest.fail(f"no {what} within 20 s:\n{log.read_text()}")


def test_demo_keeps_the_promise(sos_router: list[str], workdir: Path, db_url: str) -> None:
    result = _run(sos_router, "demo", cwd=workdir, db_url=db_url)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "Verdict: promise MET" in result.stdout
    _, _, timeline = result.stdout.partition("Timeline of report")
    assert timeline, result.stdout
    events = ["received", "page_sent", "page_failed", "escalated", "acknowledged"]
    positions = [timeline.find(f" {event} ") for event in events]
    assert -1 not in positions, f"missing from the timeline: {timeline}"
    assert positions == sorted(positions), f"timeline out of order: {timeline}"


def test_token_create_prints_only_the_token(
    sos_router: list[str], workdir: Path, db_url: str
) -> None:
    result = _run(sos_router, "token", "create", "--role", "admin", cwd=workdir, db_url=db_url)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    assert lines[0].startswith("sos_")


def test_staff_token_needs_a_staff_member(
    sos_router: list[str], workdir: Path, db_url: str
) -> None:
    result = _run(sos_router, "token", "create", "--role", "staff", cwd=workdir, db_url=db_url)

    assert result.returncode != 0
    assert "error" in result.stderr.lower()
    assert "sos_" not in result.stdout


def test_migrate_up_and_down(
    sos_router: list[str], workdir: Path, db_url: str, tmp_path: Path
) -> None:
    from routing.models import Base

    up = _run(sos_router, "migrate", cwd=workdir, db_url=db_url)
    assert up.returncode == 0, up.stderr
    assert set(Base.metadata.tables) <= _tables(tmp_path / "cli.db")

    down = _run(sos_router, "migrate", "--downgrade", "base", cwd=workdir, db_url=db_url)
    assert down.returncode == 0, down.stderr
    assert not set(Base.metadata.tables) & _tables(tmp_path / "cli.db")


def test_serve_with_zero_configuration(
    sos_router: list[str], workdir: Path, started: list[subprocess.Popen[bytes]]
) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    out, err = workdir.parent / "serve.out", workdir.parent / "serve.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(
            [*sos_router, "serve", "--port", str(port)],
            cwd=workdir,
            env=_env(),
            stdout=stdout,
            stderr=stderr,
        )
    started.append(proc)

    def healthy() -> bool:
        try:
            return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    _wait_for(healthy, proc, "200 from /healthz", err)

    assert (workdir / "sos-router.db").exists(), "the default database belongs in the cwd"
    tokens = {m["role"]: m["token"] for m in TOKEN_LINE.finditer(out.read_text())}
    assert {"app", "admin"} <= set(tokens), out.read_text()

    with httpx.Client(base_url=base, timeout=10) as api:
        report = api.post(
            "/v1/reports",
            headers={"Authorization": f"Bearer {tokens['app']}"},
            json={"category": "fraud", "callback_phone": "06 12345678"},
        )
        assert report.status_code == 201, report.text
        staff = api.get("/v1/staff", headers={"Authorization": f"Bearer {tokens['admin']}"})
        assert staff.status_code == 200, staff.text
        names = [s["name"] for s in staff.json()]
        assert len(names) == 3, names
        assert all("(demo)" in name for name in names), names

    # A graceful stop: uvicorn finishes shutting down, then re-raises the SIGTERM it caught.
    proc.terminate()
    assert proc.wait(timeout=15) in (0, -signal.SIGTERM), err.read_text()
    assert "Application shutdown complete" in err.read_text()
    assert "Traceback" not in err.read_text()


def test_worker_stops_cleanly_on_sigterm(
    sos_router: list[str],
    workdir: Path,
    db_url: str,
    tmp_path: Path,
    started: list[subprocess.Popen[bytes]],
) -> None:
    assert _run(sos_router, "migrate", cwd=workdir, db_url=db_url).returncode == 0
    err = tmp_path / "worker.err"
    with err.open("wb") as stderr:
        proc = subprocess.Popen(
            [*sos_router, "worker"],
            cwd=workdir,
            env=_env(db_url),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    started.append(proc)
    # The engine logs this after the signal handlers are in place.
    _wait_for(lambda: "engine running" in err.read_text(), proc, "'engine running'", err)
    time.sleep(0.5)  # let it tick and sleep at least once

    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pytest.fail(f"worker still running 5 s after SIGTERM:\n{err.read_text()}")
    assert code == 0, err.read_text()
    assert "Traceback" not in err.read_text()
