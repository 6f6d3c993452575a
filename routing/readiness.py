"""Readiness: what would let the promise break before any report arrives.

Looked at over the next days, for the chains that serve new reports (the newest of each category
and the newest default chain):

- coverage gaps: periods in which no step of a chain has anyone to page (fixed `targets` always
  count; a step's schedules count only while someone is on call in them);
- staff whose phone was never verified, and staff who texted STOP (no SMS pages reach them);
- unreachable chains: no target of any step (fixed, or any member of the step's schedules) can be
  paged on that step's channel (chat without a chat id, SMS after STOP).

`assess` is pure over loaded rows; `check` loads them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from routing.chain.models import Chain
from routing.rota import oncall, usage
from routing.rota import service as rota_service
from routing.rota.models import Schedule, ScheduleOverride
from routing.staff import service as staff_service
from routing.staff.models import Staff
from routing.staff.schemas import StaffRef

WINDOW = timedelta(days=7)


class ChainRef(BaseModel):
    id: str
    name: str


class CoverageGap(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    chain: ChainRef
    from_: datetime = Field(alias="from")
    to: datetime


class UnreachableChain(BaseModel):
    id: str
    name: str
    reason: str


class Readiness(BaseModel):
    ok: bool
    checked_at: datetime
    coverage_gaps: list[CoverageGap]
    staff_unverified: list[StaffRef]
    staff_sms_stopped: list[StaffRef]
    unreachable_chains: list[UnreachableChain]


def assess(
    *,
    chains: Sequence[Chain],
    schedules: Sequence[Schedule],
    overrides: Sequence[ScheduleOverride],
    staff: Sequence[Staff],
    start: datetime,
    end: datetime,
) -> Readiness:
    """Readiness over [start, end) from loaded rows (all chains: the serving ones are picked
    here)."""
    by_ref: dict[str, Schedule] = {s.name: s for s in schedules} | {s.id: s for s in schedules}
    staff_by_id = {s.id: s for s in staff}
    covered: dict[str, list[tuple[datetime, datetime]]] = {}
    for schedule in schedules:
        rules = rota_service.rules_of(schedule, overrides)
        covered[schedule.id] = oncall.covered(oncall.shifts(rules, start, end))

    gaps: list[CoverageGap] = []
    unreachable: list[UnreachableChain] = []
    for chain in usage.serving(chains):
        ref = ChainRef(id=chain.id, name=chain.name)
        for gap_start, gap_end in _gaps(chain, by_ref, covered, start, end):
            gaps.append(CoverageGap(chain=ref, from_=gap_start, to=gap_end))
        reason = _unreachable(chain, by_ref, staff_by_id)
        if reason is not None:
            unreachable.append(UnreachableChain(id=chain.id, name=chain.name, reason=reason))

    def refs(people: Sequence[Staff]) -> list[StaffRef]:
        return [StaffRef(id=s.id, name=s.name) for s in sorted(people, key=lambda s: s.name)]

    unverified = refs([s for s in staff if s.phone_verified_at is None])
    stopped = refs([s for s in staff if s.sms_stopped_at is not None])
    return Readiness(
        ok=not (gaps or unverified or stopped or unreachable),
        checked_at=start,
        coverage_gaps=gaps,
        staff_unverified=unverified,
        staff_sms_stopped=stopped,
        unreachable_chains=unreachable,
    )


def _gaps(
    chain: Chain,
    by_ref: dict[str, Schedule],
    covered: dict[str, list[tuple[datetime, datetime]]],
    start: datetime,
    end: datetime,
) -> list[tuple[datetime, datetime]]:
    ranges: list[tuple[datetime, datetime]] = []
    for step in usage.steps(chain):
        if step.get("targets"):
            return []  # a fixed target is always there to page
        for ref in step.get("schedules") or []:
            schedule = by_ref.get(str(ref))
            if schedule is not None:
                ranges.extend(covered[schedule.id])
    gaps: list[tuple[datetime, datetime]] = []
    cursor = start
    for range_start, range_end in sorted(ranges):
        if range_start > cursor:
            gaps.append((cursor, range_start))
        cursor = max(cursor, range_end)
    if cursor < end:
        gaps.append((cursor, end))
    return gaps


def _unreachable(
    chain: Chain, by_ref: dict[str, Schedule], staff_by_id: dict[str, Staff]
) -> str | None:
    """Why nobody the chain names can be paged on their step's channel; `None` if someone can."""
    reasons: list[str] = []
    for number, step in enumerate(usage.steps(chain), start=1):
        channel = str(step.get("channel", ""))
        people = [str(t) for t in step.get("targets") or []]
        for ref in step.get("schedules") or []:
            schedule = by_ref.get(str(ref))
            if schedule is None:
                reasons.append(f"step {number}: no schedule {ref!r}")
                continue
            people += [m for layer in schedule.layers for m in layer.get("members", [])]
        for staff_id in dict.fromkeys(people):
            member = staff_by_id.get(staff_id)
            if member is None:
                reasons.append(f"step {number}: no staff member {staff_id!r}")
                continue
            why = staff_service.unreachable(channel, member)
            if why is None:
                return None
            reasons.append(f"step {number} ({channel}): {member.name}: {why}")
    shown = "; ".join(reasons[:6]) + ("; …" if len(reasons) > 6 else "")
    return f"nobody in this chain can be paged: {shown or 'it names nobody'}"


async def check(session: AsyncSession, *, now: datetime, window: timedelta = WINDOW) -> Readiness:
    """Readiness over [now, now + window)."""
    end = now + window
    chains = (await session.scalars(select(Chain))).all()
    schedules = (await session.scalars(select(Schedule))).all()
    overrides = await rota_service.overrides_between(session, [s.id for s in schedules], now, end)
    staff = (await session.scalars(select(Staff))).all()
    return assess(
        chains=chains,
        schedules=schedules,
        overrides=overrides,
        staff=staff,
        start=now,
        end=end,
    )
