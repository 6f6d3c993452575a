"""The escalation auditor's repairs (`routing.engine.auditor` decides when): each runs in a
transaction the caller owns, locks the report first (the lock order of the escalator and of an
acknowledgement), checks again that the row is still as the auditor saw it, and leaves an
`audit_repair` event on the report. Each returns whether it changed anything.

They reuse what the engine does itself: a stuck send becomes `unknown` for the reconciler (never a
blind resend), a lost timer is re-armed the way intake and callbacks arm it, and a round that never
started starts through `escalation.start_step`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Exists, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from routing import escalation
from routing.audit import service as audit
from routing.audit.service import EventType
from routing.chain import planner
from routing.chain.planner import ALL_HANDS_STEP, StepRef
from routing.notify import delivery
from routing.notify.models import OutboundMessage
from routing.page import service as page_service
from routing.page.models import EscalationTimer as Timer
from routing.page.models import Page
from routing.report import service as report_service
from routing.report.models import Report
from routing.types import ReportStatus

LIVE = ("pending", "leased")
# The timers that move a chain on: `step` (a step had its turn), `start` (a callback appointment)
# and `first` (a new report's first step, where intake leaves it to the engine).
MOVES_ON = ("first", "step", "start")


def has_live_timer(*kinds: str) -> Exists:
    """The report (joined as `Report`) has a timer of `kinds` still to fire."""
    return exists().where(
        Timer.report_id == Report.id, Timer.kind.in_(kinds), Timer.state.in_(LIVE)
    )


async def release_timer(
    session: AsyncSession, *, report_id: str, timer_id: int, fence: int, now: datetime
) -> bool:
    """A timer whose worker never finished it goes back to `pending`, so the escalator fires it.
    The fence moves on: that worker, were it still alive, can no longer act on it."""
    await report_service.get_for_update(session, report_id)
    kind = await session.scalar(
        update(Timer)
        .where(Timer.id == timer_id, Timer.state == "leased", Timer.fence == fence)
        .values(state="pending", lease_until=None, fence=Timer.fence + 1)
        .returning(Timer.kind)
        .execution_options(synchronize_session=False)
    )
    if kind is None:
        return False  # taken over or finished since the auditor looked
    _repaired(
        session,
        report_id,
        now,
        f"the {kind} timer was claimed but never finished; released to fire now",
        {"timer_id": timer_id, "kind": kind},
    )
    return True


async def send_unknown(
    session: AsyncSession,
    model: type[Page] | type[OutboundMessage],
    *,
    row_id: int,
    report_id: str | None,
    fence: int,
    now: datetime,
) -> bool:
    """A page or text stuck in `sending` may have reached the provider: it becomes `unknown`, as
    the dispatcher and the messenger do with an expired lease, never `pending` again. A page then
    goes to the reconciler at once."""
    if report_id is not None:
        await report_service.get_for_update(session, report_id)
    still = await session.scalar(
        select(model.id)
        .where(model.id == row_id, model.state == "sending", model.fence == fence)
        .with_for_update()
    )
    if still is None:
        return False  # settled since the auditor looked
    detail = "stuck in sending; found by the auditor"
    if model is Page:
        await page_service.record_unknown(
            session, page_id=row_id, fence=fence, detail=detail, now=now, reconcile_at=now
        )
        what = f"page {row_id} was stuck in sending; handed to the reconciler"
    else:
        await delivery.record_unknown(
            session, message_id=row_id, fence=fence, detail=detail, now=now
        )
        what = f"text {row_id} was stuck in sending; marked unknown, not resent"
    if report_id is not None:
        _repaired(session, report_id, now, what, {f"{model.__tablename__}_id": row_id})
    return True


async def restore_escalation(
    session: AsyncSession, *, report_id: str, prebreach: timedelta | None, now: datetime
) -> list[str]:
    """Re-arm the timers an open report is missing: the deadline while the promise is undecided
    (due at the deadline, or now if it passed: the verdict is still recorded), the pre-breach
    timer with it when all hands were not paged yet (`prebreach` as intake uses it), and the next
    move of a chain that is not exhausted. Returns what was restored."""
    report = await report_service.get_for_update(session, report_id)
    if report.acknowledged_at is not None or report.status == ReportStatus.RESOLVED:
        return []
    timers = (
        await session.execute(
            select(Timer.kind, Timer.step_no, Timer.attempt_no, Timer.state).where(
                Timer.report_id == report.id
            )
        )
    ).all()
    live = {t.kind for t in timers if t.state in LIVE}
    restored = []
    if report.sla_met is None and "deadline" not in live:
        deadline = report.deadline_at + report_service.PROMISE_BROKEN_AFTER
        await _rearm(session, report, "deadline", StepRef(0, 0), max(deadline, now), now)
        restored.append("deadline")
        had_prebreach = any(t.kind == "prebreach" for t in timers)
        if prebreach is not None and not had_prebreach and await _all_hands_due(session, report):
            at_risk = max(report.deadline_at - prebreach, now)
            await _rearm(session, report, "prebreach", StepRef(0, 0), at_risk, now)
            restored.append("prebreach")
    first = planner.first_step(report.chain, report.attempt_base)
    if first is not None and not report.is_exhausted and live.isdisjoint(MOVES_ON):
        steps = [StepRef(t.step_no, t.attempt_no) for t in timers if t.kind == "step"]
        restored.append(await _restore_step(session, report, first, steps, now))
    if restored:
        _repaired(
            session,
            report.id,
            now,
            f"its escalation was lost (no {', '.join(restored)} timer); re-armed",
            {"restored": restored},
        )
    return restored


async def _all_hands_due(session: AsyncSession, report: Report) -> bool:
    """Whether the report's chain has all hands and none of this round was paged yet."""
    if not planner.has_all_hands(report.chain):
        return False
    paged = await session.scalar(
        select(Page.id)
        .where(
            Page.report_id == report.id,
            Page.step_no == ALL_HANDS_STEP,
            Page.attempt_no == report.attempt_base,
        )
        .limit(1)
    )
    return paged is None


async def _restore_step(
    session: AsyncSession,
    report: Report,
    first: StepRef,
    steps: Sequence[StepRef],
    now: datetime,
) -> str:
    """Give a stalled chain its next move. The step it reached (the furthest step of this round
    with a page or a timer) gets its timer back, due now: its own wait is unknown once the timer
    is gone, and paging the next person early is the safe side of the promise. A round that never
    started starts: at the callback time when there is one, else now."""
    paged = (
        await session.execute(
            select(Page.step_no, Page.attempt_no).where(
                Page.report_id == report.id,
                Page.attempt_no >= report.attempt_base,
                Page.step_no >= 1,
            )
        )
    ).all()
    reached = [StepRef(p.step_no, p.attempt_no) for p in paged]
    reached += [s for s in steps if s.attempt_no >= report.attempt_base and s.step_no >= 1]
    if reached:
        ref = max(reached, key=lambda r: (r.attempt_no, r.step_no))
        await _rearm(session, report, "step", ref, now, now)
        return f"step {ref.step_no}"
    if report.callback_at is not None:
        await _rearm(session, report, "start", first, max(report.callback_at, now), now)
        return "start"
    await escalation.start_step(session, report=report, ref=first, now=now)
    return "step 1"


async def _rearm(
    session: AsyncSession,
    report: Report,
    kind: str,
    ref: StepRef,
    due_at: datetime,
    now: datetime,
) -> None:
    """Put a report's timer back to `pending` at `due_at`: its row when it still exists (the
    unique key allows only one), a new row otherwise."""
    result = await session.execute(
        update(Timer)
        .where(
            Timer.report_id == report.id,
            Timer.kind == kind,
            Timer.step_no == ref.step_no,
            Timer.attempt_no == ref.attempt_no,
        )
        .values(state="pending", due_at=due_at, lease_until=None, fence=Timer.fence + 1)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        session.add(escalation.new_timer(report, kind, ref, due_at, now))
        await session.flush()


def _repaired(
    session: AsyncSession, report_id: str, now: datetime, what: str, data: dict[str, Any]
) -> None:
    audit.record(
        session,
        at=now,
        type=EventType.AUDIT_REPAIR,
        report_id=report_id,
        actor="auditor",
        detail=f"auditor: {what}",
        data=data,
    )
