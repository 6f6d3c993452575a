"""Moving a report along its chain: start a step, give its next tier a turn, move past it, page
all hands when the promise is at risk, or record that the chain ran out.

Used by intake (step 1, in the intake transaction) and by the engine when a timer falls due. Who is
paged is decided when the step fires: its staff plus whoever is on call in its schedules then,
ordered into tiers by `routing.chain.ranking`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from routing.audit import service as audit
from routing.audit.service import EventType
from routing.chain import planner, ranking
from routing.chain.planner import ALL_HANDS_STEP, LAST_RESORT_STEP, Step, StepRef
from routing.page import service as page_service
from routing.page.models import EscalationTimer
from routing.report.models import Report
from routing.rota import service as rota_service
from routing.rota.models import Schedule
from routing.staff import service as staff_service
from routing.staff.models import Staff
from routing.types import ReportStatus


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


async def people_for(
    session: AsyncSession, report: Report, step: Step, now: datetime, *, first: bool = False
) -> list[list[Staff]]:
    """The step's people in tiers, best first. `first`: the report's first step, where the
    colleague who helped this customer before is paged even if the step does not name them."""
    ids = await _step_staff_ids(session, step, now)
    if first and report.previous_helper_id:
        ids = list(dict.fromkeys([report.previous_helper_id, *ids]))
    staff = await staff_service.find_many(session, ids)
    present = [staff[i] for i in ids if i in staff]
    if len(present) < 2 and not report.previous_helper_id:
        return [present] if present else []
    busy = await _busy(session, [s.id for s in present], report.id)
    wanted = ranking.Wanted(report.language, report.category, report.previous_helper_id)
    candidates = {
        s.id: ranking.Candidate(s.id, s.name, tuple(s.languages), tuple(s.skills), s.id in busy)
        for s in present
    }
    tiers = ranking.tiers(list(candidates.values()), wanted)
    if len(tiers) > 1 or report.previous_helper_id in candidates:
        order = "; then ".join(
            ", ".join(f"{c.name} ({ranking.why(c, wanted)})" for c in tier) for tier in tiers
        )
        audit.record(
            session,
            at=now,
            type=EventType.ROUTED,
            report_id=report.id,
            detail=f"{step.channel} paging order: {order}",
            data={"tiers": [[c.staff_id for c in tier] for tier in tiers]},
        )
    return [[staff[c.staff_id] for c in tier] for tier in tiers]


async def _step_staff_ids(session: AsyncSession, step: Step, now: datetime) -> list[str]:
    """The step's staff, then whoever is on call in its schedules at `now`; each once, in order."""
    ids = list(step.targets)
    if step.schedules:
        on_call = await rota_service.on_call(session, step.schedules, now)
        ids += [i for schedule_id in step.schedules for i in on_call.get(schedule_id, [])]
    return list(dict.fromkeys(ids))


async def _busy(session: AsyncSession, staff_ids: list[str], report_id: str) -> set[str]:
    """Who of `staff_ids` holds an accepted, unresolved report (other than this one)."""
    if not staff_ids:
        return set()
    rows = await session.scalars(
        select(Report.acknowledged_by_id).where(
            Report.status == ReportStatus.ACKNOWLEDGED,
            Report.acknowledged_by_id.in_(staff_ids),
            Report.id != report_id,
        )
    )
    return {r for r in rows if r}


async def start_step(
    session: AsyncSession, *, report: Report, ref: StepRef, now: datetime, late_seconds: float = 0.0
) -> None:
    """Page step `ref` now (its first tier), and set the timer that moves on after its wait."""
    assert report.chain is not None
    step = planner.step_at(report.chain, ref)
    first = ref == StepRef(1, report.attempt_base)
    tiers = await people_for(session, report, step, now, first=first)
    pages = await page_service.create_for_step(
        session,
        report=report,
        ref=ref,
        channel=step.channel,
        tiers=tiers,
        now=now,
        late_seconds=late_seconds,
    )
    if ref.step_no in (LAST_RESORT_STEP, ALL_HANDS_STEP):
        return
    session.add(new_timer(report, "step", ref, now + timedelta(seconds=step.wait_seconds), now))
    await session.flush()
    if not pages or all(p.state == "failed" for p in pages if p.tier_no == 0):
        await page_service.fall_back_if_step_failed(session, report_id=report.id, ref=ref, now=now)


async def step_over(
    session: AsyncSession,
    *,
    report: Report,
    ref: StepRef,
    timer_id: int,
    now: datetime,
    late_seconds: float,
) -> None:
    """Step `ref` has waited out its time (or every page of its tier failed): page the step's
    next tier and wait again on the same timer, or, when every tier had its turn, escalate."""
    assert report.chain is not None
    released = await page_service.release_next_tier(session, report_id=report.id, ref=ref, now=now)
    if not released:
        await advance(session, report=report, after=ref, now=now, late_seconds=late_seconds)
        return
    step = planner.step_at(report.chain, ref)
    staff = await staff_service.find_many(session, [p.staff_id for p in released])
    names = ", ".join(staff[p.staff_id].name for p in released if p.staff_id in staff)
    late = f", late by {late_seconds:.0f} s" if late_seconds else ""
    audit.record(
        session,
        at=now,
        type=EventType.ESCALATED,
        report_id=report.id,
        detail=f"no answer; step {ref.step_no} goes on: {step.channel} to {names}{late}",
        data={"step": ref.step_no, "attempt": ref.attempt_no, "late": bool(late_seconds)},
    )
    await session.execute(
        update(EscalationTimer)
        .where(EscalationTimer.id == timer_id)
        .values(state="pending", due_at=now + timedelta(seconds=step.wait_seconds))
        .execution_options(synchronize_session=False)
    )


async def advance(
    session: AsyncSession, *, report: Report, after: StepRef, now: datetime, late_seconds: float
) -> None:
    """Step `after` has had its turn with nobody accepting: escalate to the next step, or, when
    the chain and its repeats are exhausted, record that and page the last resort."""
    assert report.chain is not None
    late = f", late by {late_seconds:.0f} s" if late_seconds else ""
    nxt = planner.step_after(report.chain, after, base=report.attempt_base)
    if nxt is not None:
        step = planner.step_at(report.chain, nxt)
        round_no = nxt.attempt_no - report.attempt_base + 1
        audit.record(
            session,
            at=now,
            type=EventType.ESCALATED,
            report_id=report.id,
            detail=f"no answer; step {nxt.step_no} (round {round_no}): "
            f"{step.channel} to {await _names(session, step)}{late}",
            data={"step": nxt.step_no, "attempt": nxt.attempt_no, "late": bool(late_seconds)},
        )
        await start_step(session, report=report, ref=nxt, now=now, late_seconds=late_seconds)
        return
    report.is_exhausted = True
    if planner.has_last_resort(report.chain):
        ref = StepRef(LAST_RESORT_STEP, report.attempt_base)
        step = planner.step_at(report.chain, ref)
        audit.record(
            session,
            at=now,
            type=EventType.ESCALATED,
            report_id=report.id,
            detail="chain exhausted, still unacknowledged; last resort: "
            f"{step.channel} to {await _names(session, step)}{late}",
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


async def all_hands(
    session: AsyncSession, *, report: Report, now: datetime, late_seconds: float
) -> None:
    """The promise is at risk: page every all-hands target of the chain at once, in parallel,
    while the chain goes on."""
    if not planner.has_all_hands(report.chain):
        return
    assert report.chain is not None
    ref = StepRef(ALL_HANDS_STEP, report.attempt_base)
    step = planner.step_at(report.chain, ref)
    ids = await _step_staff_ids(session, step, now)
    staff = await staff_service.find_many(session, ids)
    people = [staff[i] for i in ids if i in staff]
    left = max(0.0, (report.deadline_at - now).total_seconds())
    late = f", late by {late_seconds:.0f} s" if late_seconds else ""
    audit.record(
        session,
        at=now,
        type=EventType.ESCALATED,
        report_id=report.id,
        detail=f"promise at risk ({left:.0f} s left): all hands, {step.channel} to "
        f"{', '.join(p.name for p in people) or 'nobody on call'}{late}",
        data={"all_hands": True, "seconds_left": left, "late": bool(late_seconds)},
    )
    await page_service.create_for_step(
        session,
        report=report,
        ref=ref,
        channel=step.channel,
        tiers=[people] if people else [],
        now=now,
        late_seconds=late_seconds,
    )


async def _names(session: AsyncSession, step: Step) -> str:
    staff = await staff_service.find_many(session, step.targets)
    names = [staff[i].name for i in step.targets if i in staff]
    if step.schedules:
        rows = await session.execute(
            select(Schedule.id, Schedule.name).where(Schedule.id.in_(step.schedules))
        )
        by_id: dict[str, str] = {row[0]: row[1] for row in rows}
        names += [f"on call in {by_id[i]}" for i in step.schedules if i in by_id]
    return ", ".join(names) or "nobody"


async def start_appointment(
    session: AsyncSession, *, report: Report, ref: StepRef, now: datetime, late_seconds: float
) -> None:
    """The time the customer asked to be called back has come: run the chain from its start."""
    if report.chain is None or not report.chain["steps"]:
        return
    late = f", late by {late_seconds:.0f} s" if late_seconds else ""
    step = planner.step_at(report.chain, ref)
    audit.record(
        session,
        at=now,
        type=EventType.ESCALATED,
        report_id=report.id,
        detail=f"the callback time has come; step 1: {step.channel} to "
        f"{await _names(session, step)}{late}",
        data={"step": ref.step_no, "attempt": ref.attempt_no, "callback": True},
    )
    await start_step(session, report=report, ref=ref, now=now, late_seconds=late_seconds)
