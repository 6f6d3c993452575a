"""The engine loop: run every module on everything due, then sleep until the next due row.

Sleep is capped (1 s by default), and `trigger()` wakes the loop at once, which intake does after
it commits, so the first page never waits for a poll. `trigger()` also passes the hint to the
engines of other processes through `announce` (on PostgreSQL a debounced NOTIFY, `app/wake.py`);
a hint from elsewhere arrives as `wake()`. Hints only save time; the rows are the truth, so a lost
wake-up costs at most the cap.

The engine tells an `Observer` how late timers fire and pages go out: the modules call `observer()`,
which is the observer of the engine whose tick is running (a no-op outside one). The domain stays
free of any metrics library; `app/metrics.py` implements the protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Dialect, ScalarSelect, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from routing.clock import Clock

log = logging.getLogger(__name__)


class Module(Protocol):
    """An engine module acts on everything due (`run_once`) and says, as scalar subqueries over
    its rows, when its next work falls due (`due`), so an idle module costs no transaction.

    `due()` is asked once: the engine compiles every module's subqueries into one plain SQL
    statement it runs on each check (the loop checks often; building and compiling expressions
    each time cost a quarter of a busy worker's CPU). The module is due at the earliest of its
    values, unless it also defines `next_due(values)` to decide from them and its own state."""

    name: str

    def due(self) -> Sequence[ScalarSelect[Any]]: ...

    async def run_once(self, db: async_sessionmaker[AsyncSession], now: datetime) -> int: ...


class Observer(Protocol):
    """What the engine reports as it works; called in the engine loop, so it must be cheap."""

    def timer_fired(self, kind: str, lateness_seconds: float) -> None:
        """An escalation timer of `kind` fired this many seconds after its due time."""

    def page_dispatched(self, channel: str, seconds_after_due: float) -> None:
        """A page was claimed for sending on `channel` this many seconds after its due time."""


class NoObserver:
    """Observes nothing: the default, for tools and tests that need no metrics."""

    def timer_fired(self, kind: str, lateness_seconds: float) -> None:
        pass

    def page_dispatched(self, channel: str, seconds_after_due: float) -> None:
        pass


NO_OBSERVER = NoObserver()
_observer: ContextVar[Observer] = ContextVar("engine_observer", default=NO_OBSERVER)


def observer() -> Observer:
    """The observer of the engine whose tick is running: modules report through it without each
    needing a reference (their `run_once` signature stays the same)."""
    return _observer.get()


@dataclass(frozen=True, slots=True)
class _DueQuery:
    """Every module's due subqueries as one compiled statement, and how to read its values."""

    sql: str
    counts: list[int]  # how many values each module has, in module order
    convert: list[Callable[[Any], Any] | None]  # database value -> Python, per value


class Engine:
    def __init__(
        self,
        db: async_sessionmaker[AsyncSession],
        clock: Clock,
        modules: Sequence[Module],
        *,
        max_sleep: float = 1.0,
        raise_errors: bool = False,
        observer: Observer | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.modules = list(modules)
        self.max_sleep = max_sleep
        self.raise_errors = raise_errors
        self._wake = asyncio.Event()
        self._due_queries: dict[str, _DueQuery] = {}
        self._stopping = False
        self.last_tick_at: datetime | None = None
        # Tells the engines of other processes that work may be due (set by app/).
        self.announce: Callable[[], None] | None = None
        self.observer: Observer = observer or NO_OBSERVER

    def trigger(self) -> None:
        """Ask this loop, and the other processes' loops, to look for due work now (cheap,
        coalescing, safe from any task)."""
        self._wake.set()
        if self.announce is not None:
            self.announce()

    def wake(self) -> None:
        """Look for due work now: a hint from another process (never passed on)."""
        self._wake.set()

    async def tick(self) -> int:
        """Run, one after the other in their order, every module that has something due at the
        clock's current time (one query finds out which); returns rows handled. Tests and the
        demo step the engine with this; the live loop is `run_forever`."""
        _observer.set(self.observer)  # what the modules report in this tick goes to ours
        due = await self._due_by_module()
        now = self.clock.now()
        handled = 0
        for module, when in zip(self.modules, due, strict=True):
            if when is not None and when <= now:
                handled += await self._run(module)
        self.last_tick_at = self.clock.now()
        return handled

    async def run_until_idle(self, *, max_ticks: int = 1000) -> int:
        """Tick until nothing is due at the current time (tests and the demo)."""
        total = 0
        for _ in range(max_ticks):
            handled = await self.tick()
            total += handled
            if handled == 0:
                return total
        raise RuntimeError("engine did not settle: work keeps becoming due")

    async def _due_by_module(self) -> list[datetime | None]:
        """When each module is due, from the index-backed minimums it declares."""
        async with self._reading() as connection:
            query = self._due_query(connection.dialect)
            row = (await connection.exec_driver_sql(query.sql)).one()
        values = [
            convert(v) if convert else v for convert, v in zip(query.convert, row, strict=True)
        ]
        due: list[datetime | None] = []
        for module, n in zip(self.modules, query.counts, strict=True):
            mine, values = values[:n], values[n:]
            next_due = getattr(module, "next_due", None)
            if next_due is not None:
                due.append(next_due(mine))
            else:
                due.append(min((v for v in mine if v is not None), default=None))
        return due

    @contextlib.asynccontextmanager
    async def _reading(self) -> AsyncIterator[AsyncConnection]:
        """A connection for the due check: on PostgreSQL in autocommit, sparing a session
        transaction's BEGIN and ROLLBACK round trips on every check; on SQLite a session's, as its
        transactions begin with BEGIN IMMEDIATE (app/db.py)."""
        bind = self.db.kw.get("bind")
        if isinstance(bind, AsyncEngine) and bind.dialect.name == "postgresql":
            async with bind.connect() as connection:
                yield await connection.execution_options(isolation_level="AUTOCOMMIT")
        else:
            async with self.db() as session:
                yield await session.connection()

    def _due_query(self, dialect: Dialect) -> _DueQuery:
        query = self._due_queries.get(dialect.name)
        if query is None:
            per_module = [list(module.due()) for module in self.modules]
            columns = [expr for exprs in per_module for expr in exprs]
            compiled = select(*columns).compile(
                dialect=dialect, compile_kwargs={"literal_binds": True}
            )
            query = _DueQuery(
                sql=str(compiled),
                counts=[len(exprs) for exprs in per_module],
                convert=[
                    c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns
                ],
            )
            self._due_queries[dialect.name] = query
        return query

    async def next_due_at(self) -> datetime | None:
        return min((d for d in await self._due_by_module() if d is not None), default=None)

    async def run_forever(self) -> None:
        """The live loop. One query says which modules have work due; each such module runs as
        its own task, so a slow one (the dispatcher waiting on a provider) never holds up another
        (the escalator firing the next steps). Modules already coordinate through claims, as the
        engines of several processes do. The loop sleeps until the next due row (at most
        `max_sleep`), a wake-up, or a module finishing.

        Nothing here cancels a module: the session factory must bound every statement (the
        service's does), so a slow or silent database fails the check or the module's pass in
        time (its transaction rolls back), the loop tries again, and picks up by itself once the
        database answers."""
        log.info("engine running: %s", ", ".join(m.name for m in self.modules))
        _observer.set(self.observer)  # the modules' tasks inherit it
        running: dict[str, asyncio.Task[int]] = {}
        # A module that found nothing it could take (due rows another engine holds) rests a
        # moment before it is started again, so the loop never spins.
        resting: dict[str, float] = {}
        wake = asyncio.create_task(self._wake.wait())
        try:
            while not self._stopping:
                delay = self.max_sleep
                try:
                    due = await self._due_by_module()
                    now = self.clock.now()
                    self.last_tick_at = now
                    rest_ends = time.monotonic()
                    for module, when in zip(self.modules, due, strict=True):
                        if when is None or module.name in running:
                            continue
                        if when > now:
                            delay = min(delay, (when - now).total_seconds())
                        elif resting.get(module.name, 0.0) > rest_ends:
                            delay = min(delay, resting[module.name] - rest_ends)
                        else:
                            running[module.name] = asyncio.create_task(self._run(module))
                except Exception:
                    log.exception("engine loop failed; retrying in 1 s")
                    delay = 1.0
                await asyncio.wait(
                    [wake, *running.values()],
                    timeout=max(delay, 0.0),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if wake.done():
                    self._wake.clear()
                    wake = asyncio.create_task(self._wake.wait())
                for name, task in list(running.items()):
                    if task.done():
                        del running[name]
                        if not task.result():
                            resting[name] = time.monotonic() + 0.05
        finally:
            wake.cancel()
            if running:
                # Let sends in flight finish and record their outcome.
                await asyncio.wait(running.values(), timeout=10)

    async def _run(self, module: Module) -> int:
        """One `run_once` of `module` at the clock's current time: rows handled (0 on error)."""
        started = time.perf_counter()
        try:
            return await module.run_once(self.db, self.clock.now())
        except Exception:
            if self.raise_errors:
                raise
            log.exception("engine module %s failed", module.name)
            return 0
        finally:
            elapsed = time.perf_counter() - started
            if elapsed > 1:
                log.warning("engine module %s took %.2f s", module.name, elapsed)

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
