"""The engine loop: run every module on everything due, then sleep until the next due row.

Sleep is capped (1 s by default), and `trigger()` wakes the loop at once, which intake does after
it commits, so the first page never waits for a poll. Hints only save time; the rows are the truth,
so a lost wake-up costs at most the cap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from routing.bridge.models import BridgeCall
from routing.clock import Clock
from routing.page.models import EscalationTimer, Page

log = logging.getLogger(__name__)


class Module(Protocol):
    name: str

    async def run_once(self, db: async_sessionmaker[AsyncSession], now: datetime) -> int: ...


class Engine:
    def __init__(
        self,
        db: async_sessionmaker[AsyncSession],
        clock: Clock,
        modules: Sequence[Module],
        *,
        max_sleep: float = 1.0,
        raise_errors: bool = False,
    ) -> None:
        self.db = db
        self.clock = clock
        self.modules = list(modules)
        self.max_sleep = max_sleep
        self.raise_errors = raise_errors
        self._wake = asyncio.Event()
        self._stopping = False
        self.last_tick_at: datetime | None = None

    def trigger(self) -> None:
        """Ask the loop to look for due work now (cheap, coalescing, safe from any task)."""
        self._wake.set()

    async def tick(self) -> int:
        """Run every module once at the clock's current time; returns rows handled."""
        handled = 0
        for module in self.modules:
            started = time.perf_counter()
            try:
                handled += await module.run_once(self.db, self.clock.now())
            except Exception:
                if self.raise_errors:
                    raise
                log.exception("engine module %s failed", module.name)
            elapsed = time.perf_counter() - started
            if elapsed > 1:
                log.warning("engine module %s took %.2f s", module.name, elapsed)
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

    async def next_due_at(self) -> datetime | None:
        async with self.db() as session:
            candidates = (
                await session.execute(
                    select(
                        select(func.min(EscalationTimer.due_at))
                        .where(EscalationTimer.state == "pending")
                        .scalar_subquery(),
                        select(func.min(EscalationTimer.lease_until))
                        .where(EscalationTimer.state == "leased")
                        .scalar_subquery(),
                        select(func.min(Page.due_at))
                        .where(Page.state.in_(("pending", "unknown")))
                        .scalar_subquery(),
                        select(func.min(Page.lease_until))
                        .where(Page.state == "sending")
                        .scalar_subquery(),
                        select(func.min(BridgeCall.due_at))
                        .where(BridgeCall.state == "pending")
                        .scalar_subquery(),
                        select(func.min(Page.hangup_due_at))
                        .where(Page.hangup_due_at.is_not(None), Page.hung_up_at.is_(None))
                        .scalar_subquery(),
                    )
                )
            ).one()
        return min((c for c in candidates if c is not None), default=None)

    async def run_forever(self) -> None:
        log.info("engine running: %s", ", ".join(m.name for m in self.modules))
        while not self._stopping:
            self._wake.clear()
            try:
                if await self.tick():
                    continue
                delay = await self._seconds_to_next()
            except Exception:
                log.exception("engine loop failed; retrying in 1 s")
                delay = 1.0
            # Something due but not claimable (another worker holds it) must not spin the loop.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(delay, 0.02))

    async def _seconds_to_next(self) -> float:
        nxt = await self.next_due_at()
        if nxt is None:
            return self.max_sleep
        wait = (nxt - self.clock.now()).total_seconds()
        return min(max(wait, 0.0), self.max_sleep)

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
