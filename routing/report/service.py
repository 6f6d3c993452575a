"""Report use cases: intake, acknowledgement, resolution, and the view a client reads.

Intake is one transaction: idempotency key, report, step-1 pages, step and deadline timers and the
`received` event. The caller commits, then wakes the engine.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from routing import escalation
from routing.audit import service as audit
from routing.audit.service import EventType
from routing.chain import planner
from routing.chain import service as chain_service
from routing.chain.planner import StepRef
from routing.db import insert_ignoring_conflicts, new_id
from routing.errors import AlreadyAcknowledged, NotFound, ValidationFailed
from routing.page import service as page_service
from routing.report.models import IdempotencyKey, Report
from routing.report.reference import new_reference
from routing.report.schemas import (
    Escalation,
    ReportCreate,
    ReportRead,
    Sla,
    TimelineEntry,
)
from routing.staff.models import Staff
from routing.staff.schemas import StaffRef
from routing.types import ReportStatus

PROMISE_BROKEN_AFTER = timedelta(milliseconds=1)
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def request_hash(data: ReportCreate) -> str:
    canonical = json.dumps(data.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


async def submit(
    session: AsyncSession,
    *,
    data: ReportCreate,
    now: datetime,
    sla_seconds: int,
    token_id: str | None = None,
    idempotency_key: str | None = None,
    channel: str | None = None,
    received_at: datetime | None = None,
) -> tuple[Report, bool]:
    """Store a new report and start its escalation. Returns (report, created); with an
    idempotency key seen before and the same body, the earlier report and False.
    `channel` overrides the body's (reports arriving by SMS or on the SOS line);
    `received_at` is the customer's first contact when it came before this moment (a call that
    arrived before its menu ended): the promise clock starts there."""
    received_at = received_at or now
    channel = channel or str(data.channel)
    report_id = new_id()
    if idempotency_key is not None:
        scope = token_id or "anonymous"
        digest = request_hash(data)
        inserted = await session.scalar(
            insert_ignoring_conflicts(session, IdempotencyKey)
            .values(
                scope=scope,
                key=idempotency_key,
                request_hash=digest,
                report_id=report_id,
                created_at=now,
            )
            .returning(IdempotencyKey.report_id)
        )
        if inserted is None:
            earlier = await session.get(IdempotencyKey, (scope, idempotency_key))
            assert earlier is not None
            if earlier.request_hash != digest:
                raise ValidationFailed(
                    "this Idempotency-Key was used with a different request body",
                    field="Idempotency-Key",
                )
            return await get(session, earlier.report_id), False

    chain = await chain_service.select_for(session, data.category)
    report = Report(
        id=report_id,
        reference=await _unused_reference(session),
        category=str(data.category),
        channel=channel,
        language=str(data.language),
        callback_phone=data.callback_phone,
        customer_ref=data.customer_ref,
        description=data.description,
        status=ReportStatus.OPEN,
        received_at=received_at,
        deadline_at=received_at + timedelta(seconds=sla_seconds),
        is_exhausted=False,
        chain=chain_service.snapshot(chain) if chain else None,
        created_by_token_id=token_id,
    )
    session.add(report)
    await session.flush()
    audit.record(
        session,
        at=now,
        type=EventType.RECEIVED,
        report_id=report.id,
        detail=f"{data.category} report received by {channel}",
        data={"channel": channel, "category": str(data.category)},
    )
    # An ack at the deadline itself still keeps the promise, so the miss is due just after it.
    missed_at = report.deadline_at + PROMISE_BROKEN_AFTER
    session.add(escalation.new_timer(report, "deadline", StepRef(0, 0), missed_at, now))
    first = planner.first_step(report.chain)
    if first is None:
        audit.record(
            session,
            at=now,
            type=EventType.NO_CHAIN,
            report_id=report.id,
            detail="no escalation chain configured: nobody can be paged",
        )
    else:
        await escalation.start_step(session, report=report, ref=first, now=now)
    await session.flush()
    return report, True


async def _unused_reference(session: AsyncSession) -> str:
    while True:
        reference = new_reference()
        taken = await session.scalar(select(Report.id).where(Report.reference == reference))
        if taken is None:
            return reference


def _well_formed(report_id: str) -> bool:
    """Report ids are UUIDs: anything else (a NUL, a megabyte) is not found without a query."""
    return len(report_id) == 36 and _UUID.fullmatch(report_id) is not None


async def get(session: AsyncSession, report_id: str) -> Report:
    report = await session.get(Report, report_id) if _well_formed(report_id) else None
    if report is None:
        raise NotFound("no such report", field="report_id")
    return report


async def get_for_update(session: AsyncSession, report_id: str) -> Report:
    if not _well_formed(report_id):
        raise NotFound("no such report", field="report_id")
    report = await session.scalar(
        select(Report)
        .where(Report.id == report_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if report is None:
        raise NotFound("no such report", field="report_id")
    return report


async def acknowledge(
    session: AsyncSession,
    *,
    report_id: str,
    staff_id: str,
    now: datetime,
    how: str = "api",
    via_page_id: int | None = None,
) -> Report:
    """The first acknowledgement wins; the same person again is a no-op; anyone else conflicts.

    In the same transaction every timer and unsent page of the report is canceled, so no page is
    created or claimed after this commits, and every other call still ringing is marked to be
    hung up. `via_page_id` is the page the person accepted on (a keypress, an SMS reply).
    """
    report = await get_for_update(session, report_id)
    staff = await session.get(Staff, staff_id)
    if staff is None:
        raise NotFound("no such staff member", field="staff_id")
    if report.acknowledged_by_id is not None:
        if report.acknowledged_by_id == staff_id:
            return report
        holder = await session.get(Staff, report.acknowledged_by_id)
        holder_name = holder.name if holder else "someone else"
        raise AlreadyAcknowledged(
            f"already acknowledged by {holder_name}",
            holder_id=report.acknowledged_by_id,
            holder_name=holder_name,
        )
    met = now <= report.deadline_at
    values: dict[str, object] = {
        "acknowledged_at": now,
        "acknowledged_by_id": staff_id,
        "status": ReportStatus.ACKNOWLEDGED,
    }
    if met:
        values["sla_met"] = True
    won = await session.execute(
        update(Report)
        .where(Report.id == report_id, Report.acknowledged_at.is_(None))
        .values(values)
        .execution_options(synchronize_session=False)
    )
    assert won.rowcount == 1  # type: ignore[attr-defined]  # the row lock makes this the winner
    await page_service.cancel_open(session, report_id=report_id, now=now)
    if via_page_id is not None:
        await page_service.mark_answered(session, page_id=via_page_id, now=now)
    await page_service.hang_up_live_calls(session, report_id=report_id, now=now)
    seconds = (now - report.received_at).total_seconds()
    audit.record(
        session,
        at=now,
        type=EventType.ACKNOWLEDGED,
        report_id=report_id,
        actor=staff_id,
        detail=f"accepted by {staff.name} ({how}) after {seconds:.0f} s",
        data={
            "staff": {"id": staff.id, "name": staff.name},
            "via": how,
            "time_to_ack_seconds": seconds,
        },
    )
    if not met:
        await mark_missed(session, report=report, now=now)
    await session.refresh(report)
    return report


async def mark_missed(session: AsyncSession, *, report: Report, now: datetime) -> None:
    """Record the broken promise once: by the deadline timer, or by a late acknowledgement."""
    won = await session.execute(
        update(Report)
        .where(Report.id == report.id, Report.sla_met.is_(None))
        .values(sla_met=False)
        .execution_options(synchronize_session=False)
    )
    if won.rowcount == 1:  # type: ignore[attr-defined]
        audit.record(
            session,
            at=now,
            type=EventType.SLA_MISSED,
            report_id=report.id,
            detail="nobody accepted within the promised time",
            data={"deadline_at": report.deadline_at.isoformat()},
        )


async def resolve(session: AsyncSession, *, report_id: str, staff_id: str, now: datetime) -> Report:
    """Close a report. Resolving one nobody accepted yet accepts it for the resolver first."""
    report = await get_for_update(session, report_id)
    if report.status == ReportStatus.RESOLVED:
        return report
    if report.acknowledged_by_id is None:
        report = await acknowledge(
            session, report_id=report_id, staff_id=staff_id, now=now, how="resolve"
        )
    staff = await session.get(Staff, staff_id)
    assert staff is not None
    report.status, report.resolved_at, report.resolved_by_id = ReportStatus.RESOLVED, now, staff_id
    await page_service.cancel_open(session, report_id=report_id, now=now)
    audit.record(
        session,
        at=now,
        type=EventType.RESOLVED,
        report_id=report_id,
        actor=staff_id,
        detail=f"resolved by {staff.name}",
        data={"staff": {"id": staff.id, "name": staff.name}},
    )
    await session.flush()
    return report


async def view(session: AsyncSession, report: Report) -> ReportRead:
    refs = await _staff_refs(session, report.acknowledged_by_id, report.resolved_by_id)
    events = await audit.list_for_report(session, report.id)
    ack_seconds = (
        (report.acknowledged_at - report.received_at).total_seconds()
        if report.acknowledged_at
        else None
    )
    return ReportRead(
        id=report.id,
        reference=report.reference,
        status=report.status,
        category=report.category,
        channel=report.channel,
        language=report.language,
        callback_phone=report.callback_phone,
        customer_ref=report.customer_ref,
        description=report.description,
        received_at=report.received_at,
        deadline_at=report.deadline_at,
        acknowledged_at=report.acknowledged_at,
        acknowledged_by=refs.get(report.acknowledged_by_id or ""),
        resolved_at=report.resolved_at,
        resolved_by=refs.get(report.resolved_by_id or ""),
        sla=Sla(met=report.sla_met, time_to_ack_seconds=ack_seconds),
        escalation=Escalation(
            chain=report.chain["name"] if report.chain else None, exhausted=report.is_exhausted
        ),
        timeline=[
            TimelineEntry(at=e.at, type=e.type, detail=e.detail, data=e.data) for e in events
        ],
    )


async def _staff_refs(session: AsyncSession, *ids: str | None) -> dict[str, StaffRef]:
    wanted = {i for i in ids if i}
    if not wanted:
        return {}
    rows = await session.scalars(select(Staff).where(Staff.id.in_(wanted)))
    return {s.id: StaffRef(id=s.id, name=s.name) for s in rows}
