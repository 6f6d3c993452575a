"""Wake-up hints between processes on PostgreSQL: LISTEN/NOTIFY on one channel.

When an API process commits new work (a report, an acknowledgement), its engine's `trigger()`
announces it, whether or not that process runs the engine loop itself (`serve --no-engine`); a
worker process listening on the channel wakes its engine at once instead of at its next poll (at
most 1 s later). NOTIFYs are debounced to one per `debounce` seconds per process and sent outside
any transaction, so they never serialise commits; a lost hint costs only the poll interval,
because the rows, not the hints, are the truth. Both connections bound every wait (connect and
statement) and are dropped without a round trip when one fails, so a silent network costs hints,
never a task hung forever. SQLite needs none of this: one process holds the
engine and its `trigger()` is in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from routing.engine.engine import Engine

log = logging.getLogger(__name__)

CHANNEL = "sos_router_wake"
# Seconds to connect, and for each statement, on the sending and the listening connection. Every
# wait is bounded: a statement the network swallowed would otherwise hang that task forever.
SENDER_TIMEOUT = 2.0
LISTENER_TIMEOUT = 5.0


def asyncpg_dsn(database_url: str) -> str:
    """The SQLAlchemy URL (`postgresql+asyncpg://…`) as a DSN asyncpg accepts."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


class PostgresWake:
    def __init__(
        self, database_url: str, engine: Engine, *, debounce: float = 0.002, retry: float = 1.0
    ) -> None:
        self.dsn = asyncpg_dsn(database_url)
        self.engine = engine
        self.debounce = debounce
        self.retry = retry
        self._listener: Any = None
        self._sender: Any = None
        self._pending = False
        self._sending = False  # a NOTIFY is on its way
        self._again = False  # and another was asked for meanwhile
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    async def start(self, *, listen: bool = True) -> None:
        """Announce this process's new work; with `listen` (a process that runs an engine), also
        listen for the others', reconnecting in the background if the database goes away."""
        self.engine.announce = self.announce
        if listen:
            self._task = asyncio.create_task(self._keep_listening())

    def announce(self) -> None:
        if self._pending or self._stopping:
            return
        self._pending = True
        asyncio.get_running_loop().call_later(
            self.debounce, lambda: asyncio.ensure_future(self._notify())
        )

    async def _notify(self) -> None:
        self._pending = False
        if self._sending:  # one connection, one NOTIFY at a time: send again after this one
            self._again = True
            return
        self._sending = True
        try:
            self._again = True
            while self._again and not self._stopping:
                self._again = False
                await self._send()
        finally:
            self._sending = False

    async def _send(self) -> None:
        try:
            if self._sender is None or self._sender.is_closed():
                self._sender = await asyncpg.connect(
                    self.dsn, timeout=SENDER_TIMEOUT, command_timeout=SENDER_TIMEOUT
                )
            await self._sender.execute(f"NOTIFY {CHANNEL}")
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            # Only a hint: the other engines still find the work at their next poll.
            log.debug("wake-up hint not sent: %s", type(exc).__name__)
            _drop(self._sender)
            self._sender = None

    async def _keep_listening(self) -> None:
        while not self._stopping:
            try:
                self._listener = await asyncpg.connect(
                    self.dsn, timeout=LISTENER_TIMEOUT, command_timeout=LISTENER_TIMEOUT
                )
                await self._listener.add_listener(CHANNEL, self._heard)
                # Work may have arrived while we were not listening.
                self.engine.wake()
                while not self._listener.is_closed():
                    await asyncio.sleep(5)
                    # A cheap round trip notices a dead server, or a silent network, that never
                    # closed the socket (the command timeout bounds it).
                    await self._listener.execute("SELECT 1")
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                log.warning(
                    "wake-up listener unavailable (%s); polling meanwhile", type(exc).__name__
                )
                _drop(self._listener)
                self._listener = None
            if not self._stopping:
                await asyncio.sleep(self.retry)

    def _heard(self, *_: object) -> None:
        self.engine.wake()

    async def stop(self) -> None:
        self._stopping = True
        self.engine.announce = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for conn in (self._listener, self._sender):
            if conn is not None and not conn.is_closed():
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(conn.close(), 2)


def _drop(conn: Any) -> None:
    """Close a connection that failed, at once and without a round trip (the network may be
    what failed): its socket and any cancel request in flight go with it."""
    if conn is not None and not conn.is_closed():
        conn.terminate()
