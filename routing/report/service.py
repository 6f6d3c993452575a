"""Report use cases: intake, acknowledgement, resolution, and the view a client reads.

Intake is one transaction: idempotency key, report, step-1 pages, step and deadline timers and the
`received` event. The caller commits, then wakes the engine.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached

from routing import crypto, escalation
from routing.audit import service as audit
from routing.audit.models import AuditEvent
from routing.audit.service import EventType
from routing.chain import planner
from routing.chain import service as chain_service
from routing.db import new_id
from routing.errors import AlreadyAcknowledged, AlreadyResolved, NotFound, ValidationFailed
from routing.inbound.models import SosCall
from routing.notify import service as notify
from routing.page import service as page_service
from routing.page.models import EscalationTimer
from routing.report import intake
from routing.report.models import IdempotencyKey, Report
from routing.report.schemas import (
    Escalation,
    ReportCreate,
    ReportRead,
    Sla,
    TimelineEntry,
)
from routing.sql import Raw
from routing.staff.models import Staff
from routing.staff.schemas import StaffRef
from routing.types import ReportStatus

PROMISE_BROKEN_AFTER = timedelta(milliseconds=1)
# A new report pages first whoever handled the same customer's case this recently.
STICKY = timedelta(hours=24)
MIN_CALLBACK_AHEAD = timedelta(minutes=1)
MAX_CALLBACK_AHEAD = timedelta(days=7)
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def request_hash(data: ReportCreate) -> str:
    canonical = json.dumps(data.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class Intake(StrEnum):
    """What a submission did."""

    CREATED = "created"  # a new report; paging started
    REPLAYED = "replayed"  # an Idempotency-Key seen before with the same body: the earlier report
    JOINED = "joined"  # the customer already has an open case: this contact joined it


async def submit(
    session: AsyncSession,
    *,
    data: ReportCreate,
    now: datetime,
    sla_seconds: int,
    prebreach_seconds: int | None = None,
    token_id: str | None = None,
    idempotency_key: str | None = None,
    channel: str | None = None,
    received_at: datetime | None = None,
) -> tuple[Report, Intake]:
    """Store a new report and start its escalation, or add this contact to the customer's open
    case (same customer_ref or phone number).

    With an idempotency key seen before and the same body, the earlier report is returned.
    `channel` overrides the body's (reports arriving by SMS or on the SOS line); `received_at` is
    the customer's first contact when it came before this moment (a call that arrived before its
    menu ended): the promise clock starts there. `prebreach_seconds`: when, before the deadline,
    the chain's all-hands targets are paged (None: never)."""
    received_at = received_at or now
    channel = channel or str(data.channel)
    report_id = new_id()
    raw = await Raw.of(session)
    if idempotency_key is not None:
        scope = token_id or "anonymous"
        digest = request_hash(data)
        if not await intake.claim_idempotency_key(
            raw, scope=scope, key=idempotency_key, digest=digest, report_id=report_id, now=now
        ):
            earlier = await session.get(IdempotencyKey, (scope, idempotency_key))
            assert earlier is not None
            if earlier.request_hash != digest:
                raise ValidationFailed(
                    "this Idempotency-Key was used with a different request body",
                    field="Idempotency-Key",
                )
            return await get(session, earlier.report_id), Intake.REPLAYED
    if data.callback_at is not None:
        _check_callback_time(data.callback_at, now, field="callback_at")

    # The same customer: the same real phone number (a withheld caller id matches nobody), or
    # the same customer_ref. The number is found by its keyed hash (it is stored encrypted).
    phone_hash = crypto.phone_hash(data.callback_phone)
    await intake.lock_customer(
        raw, [f"phone:{phone_hash}"] + [f"ref:{data.customer_ref}"] * bool(data.customer_ref)
    )
    case_id, previous_helper = await intake.customer_history(
        raw,
        phone_hash=phone_hash if data.callback_phone.startswith("+") else None,
        customer_ref=data.customer_ref or None,
        handled_since=now - STICKY,
    )
    if case_id is not None:
        case = await get_for_update(session, case_id)
        await _join(
            session,
            case,
            data,
            channel=channel,
            received_at=received_at,
            now=now,
            sla_seconds=sla_seconds,
            token_id=token_id,
        )
        if idempotency_key is not None:
            key = await session.get(IdempotencyKey, (token_id or "anonymous", idempotency_key))
            assert key is not None
            key.report_id = case.id
        await session.flush()
        return case, Intake.JOINED

    chain = await chain_service.snapshot_for(session, data.category)
    starts_at = data.callback_at or received_at
    values: dict[str, Any] = {
        "id": report_id,
        "category": str(data.category),
        "channel": channel,
        "language": str(data.language),
        "callback_phone": data.callback_phone,
        "callback_phone_hash": phone_hash,
        "customer_ref": data.customer_ref,
        "description": data.description,
        "status": str(ReportStatus.OPEN),
        "received_at": received_at,
        "deadline_at": starts_at + timedelta(seconds=sla_seconds),
        "callback_at": data.callback_at,
        "acknowledged_at": None,
        "acknowledged_by_id": None,
        "resolved_at": None,
        "resolved_by_id": None,
        "sla_met": None,
        "attempt_base": 0,
        "contacts": 1,
        "previous_helper_id": previous_helper,
        "is_exhausted": False,
        "chain": chain,
        "created_by_token_id": token_id,
        "erased_at": None,
    }
    values["reference"] = await intake.insert_report(raw, values)
    # The row is written: the session takes the object as loaded, with no SELECT (so `values`
    # names every column).
    report = Report(**values)
    make_transient_to_detached(report)
    session.add(report)

    events = [
        audit.row(
            at=now,
            type=EventType.RECEIVED,
            report_id=report.id,
            detail=f"{data.category} report received by {channel}",
            data={"channel": channel, "category": str(data.category)},
        )
    ]
    # An ack at the deadline itself still keeps the promise, so the miss is due just after it.
    timers = [("deadline", 0, 0, report.deadline_at + PROMISE_BROKEN_AFTER)]
    if prebreach_seconds is not None and planner.has_all_hands(report.chain):
        at_risk = report.deadline_at - timedelta(seconds=prebreach_seconds)
        timers.append(("prebreach", 0, 0, max(at_risk, now)))
    first = planner.first_step(report.chain)
    if first is None:
        events.append(
            audit.row(
                at=now,
                type=EventType.NO_CHAIN,
                report_id=report.id,
                detail="no escalation chain configured: nobody can be paged",
            )
        )
    elif data.callback_at is not None:
        events.append(_callback_event(report, data.callback_at, now))
        timers.append(("start", first.step_no, first.attempt_no, data.callback_at))
    else:
        # The engine pages step 1 the moment this commits (intake wakes it): intake itself stays
        # a few inserts, however much routing step 1 needs (rotas, ranking, limits).
        timers.append(("first", first.step_no, first.attempt_no, now))
    await intake.insert_events(raw, events)
    await intake.insert_timers(raw, report.id, timers, now)
    await notify.queue_receipt(session, report=report, now=now)  # SOS line and SMS reports
    return report, Intake.CREATED


async def _join(
    session: AsyncSession,
    case: Report,
    data: ReportCreate,
    *,
    channel: str,
    received_at: datetime,
    now: datetime,
    sla_seconds: int,
    token_id: str | None,
) -> None:
    """A new contact from a customer whose case is open: it joins the case. The promise keeps
    counting from the earliest contact."""
    case.contacts += 1
    if data.description:
        joined = (
            f"{case.description}\n\n{data.description}" if case.description else data.description
        )
        case.description = joined[-4000:]
    case.customer_ref = case.customer_ref or data.customer_ref
    case.created_by_token_id = case.created_by_token_id or token_id
    other = f"; they now say {data.category}" if str(data.category) != case.category else ""
    audit.record(
        session,
        at=now,
        type=EventType.CONTACT,
        report_id=case.id,
        detail=f"the customer got in touch again by {channel}{other}; joined this case",
        data={"channel": channel, "category": str(data.category), "contacts": case.contacts},
    )
    if (
        received_at < case.received_at
        and case.sla_met is None
        and case.acknowledged_at is None
        and not case.callback_at
    ):
        case.received_at = received_at
        case.deadline_at = received_at + timedelta(seconds=sla_seconds)
        await _move_timer(session, case.id, "deadline", case.deadline_at + PROMISE_BROKEN_AFTER)


async def _move_timer(
    session: AsyncSession,
    report_id: str,
    kind: str,
    due_at: datetime,
    *,
    by: timedelta | None = None,
) -> None:
    """Re-arm a report's deadline or pre-breach timer for a new time (`by`: shift it instead)."""
    values: dict[str, object] = {"state": "pending", "lease_until": None}
    values["due_at"] = due_at if by is None else EscalationTimer.due_at + by
    await session.execute(
        update(EscalationTimer)
        .where(
            EscalationTimer.report_id == report_id,
            EscalationTimer.kind == kind,
            EscalationTimer.state.in_(("pending", "leased", "canceled")),
        )
        .values(values)
        .execution_options(synchronize_session=False)
    )


def _check_callback_time(at: datetime, now: datetime, *, field: str) -> None:
    if at < now + MIN_CALLBACK_AHEAD:
        raise ValidationFailed("a callback time must be at least a minute from now", field=field)
    if at > now + MAX_CALLBACK_AHEAD:
        raise ValidationFailed("a callback time must be within 7 days", field=field)


def _callback_event(report: Report, at: datetime, now: datetime) -> dict[str, Any]:
    return audit.row(
        at=now,
        type=EventType.CALLBACK_REQUESTED,
        report_id=report.id,
        detail=f"the customer asked to be called at {at.isoformat(timespec='minutes')}; "
        "paging starts then and the promise counts from then",
        data={"callback_at": at.isoformat()},
    )


async def request_callback(
    session: AsyncSession,
    *,
    report_id: str,
    at: datetime,
    now: datetime,
    sla_seconds: int,
    prebreach_seconds: int | None = None,
    time_zone: str = "Europe/Amsterdam",
) -> Report:
    """The customer would rather be called at `at`: stop paging now, page again from the first
    step at `at`, and measure the promise from `at` (unless it was already broken)."""
    report = await get_for_update(session, report_id)
    if report.status == ReportStatus.RESOLVED:
        raise AlreadyResolved("this report is resolved")
    if report.acknowledged_by_id is not None:
        holder = await session.get(Staff, report.acknowledged_by_id)
        name = holder.name if holder else "someone"
        raise AlreadyAcknowledged(
            f"already accepted by {name}, who is calling the customer",
            holder_id=report.acknowledged_by_id,
            holder_name=name,
        )
    _check_callback_time(at, now, field="at")
    await page_service.cancel_open(session, report_id=report.id, now=now)
    await page_service.hang_up_live_calls(session, report_id=report.id, now=now)
    used = await session.scalar(
        select(func.max(EscalationTimer.attempt_no)).where(EscalationTimer.report_id == report.id)
    )
    report.callback_at = at
    report.attempt_base = max(int(used or 0), report.attempt_base) + 1
    report.is_exhausted = False
    if report.sla_met is None:
        report.deadline_at = at + timedelta(seconds=sla_seconds)
        await _move_timer(session, report.id, "deadline", report.deadline_at + PROMISE_BROKEN_AFTER)
        if prebreach_seconds is not None:
            at_risk = report.deadline_at - timedelta(seconds=prebreach_seconds)
            await _move_timer(session, report.id, "prebreach", max(at_risk, at))
    session.add(AuditEvent(**_callback_event(report, at, now)))
    await notify.queue_callback_confirmation(
        session, report=report, at=at, now=now, time_zone=time_zone
    )
    first = planner.first_step(report.chain, report.attempt_base)
    if first is not None:
        session.add(escalation.new_timer(report, "start", first, at, now))
    await session.flush()
    return report


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
    # Closed without anyone accepting first (the case was settled some other way): no "calls you
    # now" text. A caller holding on the SOS line meets the colleague in the room instead.
    if how != "resolve" and not await _caller_holding(session, report_id):
        await notify.queue_accepted(session, report=report, staff=staff, now=now)
    await session.refresh(report)
    return report


async def _caller_holding(session: AsyncSession, report_id: str) -> bool:
    """Whether the customer is on the SOS line right now, waiting in the report's room: then the
    colleague joins them there and a "calls you now" text would only confuse."""
    holding = await session.scalar(
        select(SosCall.call_sid)
        .where(SosCall.report_id == report_id, SosCall.left_at.is_(None))
        .limit(1)
    )
    return holding is not None


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
    timeline = await _timeline(session, report.id)
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
        callback_at=report.callback_at,
        contacts=report.contacts,
        sla=Sla(met=report.sla_met, time_to_ack_seconds=ack_seconds),
        escalation=Escalation(
            chain=report.chain["name"] if report.chain else None, exhausted=report.is_exhausted
        ),
        timeline=timeline,
    )


async def _timeline(session: AsyncSession, report_id: str) -> list[TimelineEntry]:
    """The report's events, oldest first (every response to a client carries them)."""
    await session.flush()
    raw = await Raw.of(session)
    rows = await raw.fetch(
        "SELECT at, type, detail, data FROM audit_events WHERE report_id = $1 ORDER BY id",
        report_id,
    )
    return [
        TimelineEntry(at=raw.time(r[0]), type=r[1], detail=r[2], data=raw.json(r[3])) for r in rows
    ]


async def _staff_refs(session: AsyncSession, *ids: str | None) -> dict[str, StaffRef]:
    wanted = {i for i in ids if i}
    if not wanted:
        return {}
    rows = await session.scalars(select(Staff).where(Staff.id.in_(wanted)))
    return {s.id: StaffRef(id=s.id, name=s.name) for s in rows}
