"""Fires due escalation timers: give a step's next tier its turn or move a report to its next step,
start a callback appointment, page all hands before the promise breaks, or record that it broke."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, ScalarSelect, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from routing import escalation
from routing.chain.planner import StepRef
from routing.engine.claim import claim, seconds_late
from routing.engine.engine import observer
from routing.page.models import EscalationTimer as Timer
from routing.report import service as report_service
from routing.types import ReportStatus

log = logging.getLogger(__name__)


class Escalator:
    name = "escalator"

    def __init__(
        self,
        *,
        lease_seconds: float = 10,
        batch: int = 100,
        late_slack: float = 2,
        crash_point: Callable[[str], None] = lambda _point: None,
    ) -> None:
        """`crash_point`: called at `after_timer_claim`, where the fault-injection suite kills the
        process (a no-op otherwise)."""
        self.lease = timedelta(seconds=lease_seconds)
        self.batch = batch
        self.late_slack = late_slack
        self.crash_point = crash_point

    def due(self) -> Sequence[ScalarSelect[Any]]:
        return [
            select(func.min(Timer.due_at)).where(Timer.state == "pending").scalar_subquery(),
            select(func.min(Timer.lease_until)).where(Timer.state == "leased").scalar_subquery(),
        ]

    async def run_once(self, db: async_sessionmaker[AsyncSession], now: datetime) -> int:
        async with db.begin() as session:
            rows = await claim(
                session,
                Timer,
                where=[
                    or_(
                        (Timer.state == "pending") & (Timer.due_at <= now),
                        # Takeover: the worker that leased it died before finishing.
                        (Timer.state == "leased") & (Timer.lease_until < now),
                    )
                ],
                order_by=Timer.due_at,
                values={"state": "leased", "lease_until": now + self.lease, "claimed_at": now},
                returning=[
                    Timer.report_id,
                    Timer.kind,
                    Timer.step_no,
                    Timer.attempt_no,
                    Timer.due_at,
                ],
                limit=self.batch,
            )
        if rows:
            self.crash_point("after_timer_claim")
        for row in rows:
            async with db.begin() as session:
                await self._fire(session, row, now)
        return len(rows)

    async def _fire(self, session: AsyncSession, row: Row[Any], now: datetime) -> None:
        # Lock the report before the timer, in the same order as an acknowledgement does.
        report = await report_service.get_for_update(session, row.report_id)
        done = await session.execute(
            update(Timer)
            .where(Timer.id == row.id, Timer.fence == row.fence, Timer.state == "leased")
            .values(state="done", lease_until=None)
            .execution_options(synchronize_session=False)
        )
        if done.rowcount != 1:  # type: ignore[attr-defined]
            return  # canceled by an acknowledgement, or taken over by another worker
        observer().timer_fired(row.kind, (now - row.due_at).total_seconds())
        if report.acknowledged_at is not None or report.status == ReportStatus.RESOLVED:
            return
        late = seconds_late(row.due_at, now, slack=self.late_slack)
        ref = StepRef(row.step_no, row.attempt_no)
        if row.kind == "deadline":
            await report_service.mark_missed(session, report=report, now=now)
        elif row.kind == "prebreach":
            await escalation.all_hands(session, report=report, now=now, late_seconds=late)
        elif row.kind == "first":
            await escalation.start_step(session, report=report, ref=ref, now=now, late_seconds=late)
        elif row.kind == "start":
            await escalation.start_appointment(
                session, report=report, ref=ref, now=now, late_seconds=late
            )
        else:
            await escalation.step_over(
                session, report=report, ref=ref, timer_id=row.id, now=now, late_seconds=late
            )
        if late:
            log.warning(
                "report %s: %s timer fired %.1f s late",
                report.id,
                row.kind,
                late,
                extra={"report_id": report.id},
            )
