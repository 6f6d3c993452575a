"""Real processes for the fault-injection suite and `bench/recovery.py`: a private PostgreSQL
cluster, `sos-router serve` and `sos-router worker` processes, and how to end them.

Everything here is started by us, remembered by pid, and ended by that pid only: a test never
signals a process it did not start, and never touches the shared PostgreSQL server on port 5432.
Waits are bounded loops that give up with a message naming what they waited for.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TypeVar

import httpx

from tests import keys

ROOT = Path(__file__).resolve().parents[2]
POSTGRES_USER = "postgres"
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(
    probe: Callable[[], T | None], *, within: float, what: str, interval: float = 0.05
) -> T:
    """Poll `probe` until it returns something truthy, for at most `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {within:g} s waiting for {what}")
        time.sleep(interval)


async def eventually(
    probe: Callable[[], Awaitable[T | None]], *, within: float, what: str, interval: float = 0.05
) -> T:
    """`wait_until` for async probes (database reads, HTTP calls)."""
    deadline = time.monotonic() + within
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {within:g} s waiting for {what}")
        await asyncio.sleep(interval)


def _postgres_bin() -> Path:
    """The newest installed PostgreSQL's programs (Debian keeps them out of PATH)."""
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3])
    )
    if not versions:
        found = shutil.which("initdb")
        if found is None:
            raise RuntimeError("PostgreSQL's initdb is not installed")
        return Path(found).parent
    return versions[-1].parent


class Cluster:
    """A throwaway PostgreSQL cluster in a temporary directory, on a free loopback port.

    `initdb` refuses to run as root, so as root the cluster belongs to the `postgres` user and
    its tools run through `runuser` (anyone else runs them as themselves). fsync stays on: a
    crash test on a database that may lose commits would prove nothing. `stop("immediate")` is
    a crash (no shutdown checkpoint; the next start replays the WAL). Commit timestamps are kept
    (`track_commit_timestamp`), so a test can tell in which order transactions of different
    processes committed.
    """

    def __init__(self) -> None:
        self.bin = _postgres_bin()
        self.root = Path(tempfile.mkdtemp(prefix="sos-faults-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.port = free_port()
        try:
            if os.geteuid() == 0:
                owner = pwd.getpwnam(POSTGRES_USER)
                os.chown(self.root, owner.pw_uid, owner.pw_gid)
            self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8")
        except BaseException:
            shutil.rmtree(self.root, ignore_errors=True)
            raise

    def _run(self, program: str, *args: str, timeout: float = 60) -> None:
        command = [str(self.bin / program), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", POSTGRES_USER, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"{program} failed ({done.returncode}): {done.stderr.strip()}")

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root}"
            " -c track_commit_timestamp=on"
        )
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60",
            "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    @property
    def is_running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def sql(self, statement: str, database: str = "postgres") -> None:
        self._run(
            "psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", database,
            "-v", "ON_ERROR_STOP=1", "-q", "-c", statement,
        )  # fmt: skip

    def destroy(self) -> None:
        """Stop the cluster (as a crash: nothing in it is kept) and delete its files."""
        if self.is_running:
            try:
                self.stop("immediate")
            except (RuntimeError, subprocess.SubprocessError, OSError):
                # pg_ctl failed: end the postmaster of *this* data directory by its pid.
                with contextlib.suppress(OSError, ValueError, IndexError):
                    pid = int((self.data / "postmaster.pid").read_text().split()[0])
                    os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.root, ignore_errors=True)


class Proc:
    """One `sos-router` process we started. Its output goes to a log file (a pipe nobody reads
    would fill up and stall it)."""

    def __init__(
        self,
        name: str,
        args: list[str],
        env: Mapping[str, str],
        log: Path,
        *,
        url: str | None = None,
    ) -> None:
        self.name = name
        self.url = url  # where a `serve` process answers HTTP
        self.log = log
        with log.open("ab") as out:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "app", *args],
                cwd=ROOT,
                env=dict(env),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.pid = self.popen.pid

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL, as a crash (it also ends a paused process)."""
        if self.alive:
            os.kill(self.pid, signal.SIGKILL)
        self.popen.wait(10)

    def pause(self) -> None:
        """SIGSTOP: the process keeps its connections but does nothing until `resume()`."""
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def wait_exit(self, timeout: float) -> int:
        return self.popen.wait(timeout)

    def __repr__(self) -> str:
        return f"<{self.name} pid {self.pid}{'' if self.alive else ' ended'}>"


def account_sid(name: str) -> str:
    """A Twilio account SID of the right shape, different per process: the fake provider then
    knows which process sent what."""
    return "AC" + name.encode().hex().ljust(32, "0")[:32]


class Processes:
    """The `serve` and `worker` processes of one test (or one benchmark run), all on one
    database, paging through the fake Twilio at `provider_url`. `end_all()` ends exactly these
    processes, by pid."""

    def __init__(
        self,
        *,
        database_url: str,
        provider_url: str,
        auth_token: str,
        workdir: Path,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.database_url = database_url
        self.provider_url = provider_url
        self.auth_token = auth_token
        self.workdir = workdir
        self.env = dict(env or {})
        self.started: list[Proc] = []
        self._serving = False  # a `serve` was started (it took the public URL)
        # Twilio calls back (and signs for) one public URL: the first `serve` started.
        self.public_port = free_port()

    @property
    def public_url(self) -> str:
        return f"http://127.0.0.1:{self.public_port}"

    def environment(self, name: str, extra: Mapping[str, str]) -> dict[str, str]:
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("SOS_")}
        return {
            **inherited,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            "SOS_DATABASE_URL": self.database_url,
            "SOS_SEED_DEMO": "false",
            "SOS_LOG_LEVEL": "INFO",
            "SOS_SECRET_KEY": "fault-injection-suite",
            **keys.ENV,  # the suite's data keys: its own process reads what these write
            "SOS_PUBLIC_BASE_URL": self.public_url,
            "SOS_TWILIO__ACCOUNT_SID": account_sid(name),
            "SOS_TWILIO__AUTH_TOKEN": self.auth_token,
            "SOS_TWILIO__FROM_NUMBER": "+3197010000000",
            "SOS_TWILIO__API_BASE": self.provider_url,
            **self.env,
            **extra,
        }

    def start_serve(
        self, name: str, *, port: int | None = None, engine: bool = True, **extra: str
    ) -> Proc:
        """Start `sos-router serve` (API and engine; without `engine`, the API alone); the first
        one answers on the public URL (unless given another `port`)."""
        if port is None:
            port = free_port() if self._serving else self.public_port
        self._serving = True
        url = f"http://127.0.0.1:{port}"
        args = ["serve", "--port", str(port)] + ([] if engine else ["--no-engine"])
        return self._start(name, args, extra, url=url)

    def start_worker(self, name: str, *, monitor: bool = False, **extra: str) -> Proc:
        """Start `sos-router worker` (the engine alone); with `monitor`, it also serves
        `/healthz` and `/readyz` (`--metrics-port`) at its `url`."""
        if not monitor:
            return self._start(name, ["worker"], extra)
        port = free_port()
        args = ["worker", "--metrics-port", str(port)]
        return self._start(name, args, extra, url=f"http://127.0.0.1:{port}")

    def ready(self, *procs: Proc, within: float = 60) -> None:
        """Wait until each `serve` answers `/healthz` and each worker's engine loop runs (they
        start side by side: a start is mostly imports, and there are two cores)."""
        for proc in procs:
            wait_until(lambda p=proc: _ready(p), within=within, what=f"{proc.name} to start")

    def _start(
        self, name: str, args: list[str], extra: Mapping[str, str], *, url: str | None = None
    ) -> Proc:
        log = self.workdir / f"{name}.log"
        proc = Proc(name, args, self.environment(name, extra), log, url=url)
        self.started.append(proc)
        return proc

    def end_all(self) -> None:
        """SIGKILL each of our processes still running: their database is thrown away."""
        for proc in self.started:
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                proc.kill()


def _ready(proc: Proc) -> bool:
    if not proc.alive:
        raise RuntimeError(f"{proc.name} ended while starting:\n{proc.output()[-3000:]}")
    if proc.url is None:
        return "engine running" in proc.output()
    try:
        return httpx.get(f"{proc.url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
