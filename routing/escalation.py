"""Moving a report along its chain: start a step, move past it, or record that the chain ran out.

Used by intake (step 1, in the intake transaction) and by the engine when a step's wait is over.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from routing.audit import service as audit
from routing.audit.service import EventType
from routing.chain import planner
from routing.chain.planner import LAST_RESORT_STEP, StepRef
from routing.page import service as page_service
from routing.page.models import EscalationTimer
from routing.report.models import Report
from routing.staff import service as staff_service


def new_timer(
    report: Report, kind: str, ref: StepRef, due_at: datetime, now: datetime
) -> EscalationTimer:
    return EscalationTimer(
        report_id=report.id,
        kind=kind,
        step_no=ref.step_no,
        attempt_no=ref.attempt_no,
        due_at=due_at,
        state="pending",
        fence=0,
        created_at=now,
    )


async def start_step(
    session: AsyncSession, *, report: Report, ref: StepRef, now: datetime, late_seconds: float = 0.0
) -> None:
    """Page every target of step `ref` now, and set the timer that moves on after its wait."""
    assert report.chain is not None
    step = planner.step_at(report.chain, ref)
    pages = await page_service.create_for_step(
        session, report=report, ref=ref, step=step, now=now, late_seconds=late_seconds
    )
    if ref.step_no == LAST_RESORT_STEP:
        return
    session.add(new_timer(report, "step", ref, now + timedelta(seconds=step.wait_seconds), now))
    await session.flush()
    if not pages or all(p.state == "failed" for p in pages):
        await page_service.fall_back_if_step_failed(session, report_id=report.id, ref=ref, now=now)


async def advance(
    session: AsyncSession, *, report: Report, after: StepRef, now: datetime, late_seconds: float
) -> None:
    """Step `after` has waited out its time with nobody accepting: escalate to the next step,
    or, when the chain and its repeats are exhausted, record that and page the last resort."""
    assert report.chain is not None
    late = f", late by {late_seconds:.0f} s" if late_seconds else ""
    nxt = planner.step_after(report.chain, after)
    if nxt is not None:
        step = planner.step_at(report.chain, nxt)
        names = await _names(session, step.targets)
        audit.record(
            session,
            at=now,
            type=EventType.ESCALATED,
            report_id=report.id,
            detail=f"no answer; step {nxt.step_no} (round {nxt.attempt_no + 1}): "
            f"{step.channel} to {names}{late}",
            data={"step": nxt.step_no, "attempt": nxt.attempt_no, "late": bool(late_seconds)},
        )
        await start_step(session, report=report, ref=nxt, now=now, late_seconds=late_seconds)
        return
    report.is_exhausted = True
    if planner.has_last_resort(report.chain):
        ref = StepRef(LAST_RESORT_STEP, 0)
        step = planner.step_at(report.chain, ref)
        names = await _names(session, step.targets)
        audit.record(
            session,
            at=now,
            type=EventType.ESCALATED,
            report_id=report.id,
            detail=f"chain exhausted, still unacknowledged; last resort: {step.channel} to {names}"
            f"{late}",
            data={"step": LAST_RESORT_STEP, "last_resort": True, "late": bool(late_seconds)},
        )
        await start_step(session, report=report, ref=ref, now=now, late_seconds=late_seconds)
    else:
        audit.record(
            session,
            at=now,
            type=EventType.ESCALATED,
            report_id=report.id,
            detail=f"chain exhausted, still unacknowledged; no last resort configured{late}",
            data={"exhausted": True, "late": bool(late_seconds)},
        )


async def _names(session: AsyncSession, ids: tuple[str, ...]) -> str:
    staff = await staff_service.find_many(session, ids)
    return ", ".join(staff[i].name for i in ids if i in staff) or "nobody"
