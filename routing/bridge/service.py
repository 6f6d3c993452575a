"""The voice bridge: once someone accepts, the acceptor and the customer talk in the report's
conference room. Who must still be called depends on how they got there:

- the acceptor pressed 1 on a page call: they are already on the line and join the room;
- they accepted by SMS: we call them into the room too (agent first);
- the customer called the SOS line and is still holding in the room: nobody to call;
- otherwise (an app, web or SMS report, or a caller who hung up): we call the customer from the
  SOS number.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from routing.audit import service as audit
from routing.bridge.models import BridgeCall
from routing.inbound.models import SosCall
from routing.report.models import Report
from routing.staff.models import Staff


def room_name(report_id: str) -> str:
    return f"sos-{report_id}"


async def caller_is_holding(session: AsyncSession, report_id: str) -> bool:
    waiting = await session.scalar(
        select(SosCall.call_sid).where(SosCall.report_id == report_id, SosCall.left_at.is_(None))
    )
    return waiting is not None


async def connect(
    session: AsyncSession,
    *,
    report: Report,
    staff: Staff,
    acceptor_on_call: bool,
    now: datetime,
) -> None:
    """Queue the calls that bring the acceptor and the customer together (outbox rows)."""
    legs: list[tuple[str, str]] = []
    if not acceptor_on_call:
        legs.append(("staff", staff.phone))
    if not await caller_is_holding(session, report.id):
        if report.callback_phone.startswith("+"):
            legs.append(("customer", report.callback_phone))
        else:
            audit.record(
                session,
                at=now,
                type="callback_impossible",
                report_id=report.id,
                detail="the caller's number is withheld: they cannot be called back",
            )
    queued = set(
        await session.scalars(select(BridgeCall.leg).where(BridgeCall.report_id == report.id))
    )
    legs = [(leg, number) for leg, number in legs if leg not in queued]
    for leg, number in legs:
        session.add(
            BridgeCall(
                report_id=report.id,
                leg=leg,
                staff_id=staff.id,
                to_number=number,
                state="pending",
                due_at=now,
                fence=0,
                tries=0,
                created_at=now,
            )
        )
    if legs:
        who = " and ".join("the customer" if leg == "customer" else staff.name for leg, _ in legs)
        audit.record(
            session,
            at=now,
            type="bridge_started",
            report_id=report.id,
            actor=staff.id,
            detail=f"calling {who} into the conference with {staff.name}",
            data={"legs": [leg for leg, _ in legs]},
        )
    await session.flush()


CALL_FAILED = {"busy", "no-answer", "failed", "canceled"}


async def call_status(session: AsyncSession, *, call_id: int, status: str, now: datetime) -> None:
    call = await session.get(BridgeCall, call_id)
    if call is None or call.state in ("answered", "failed"):
        return
    if status == "in-progress":
        call.state = "answered"
        audit.record(
            session,
            at=now,
            type="bridge_connected",
            report_id=call.report_id,
            detail=f"the {call.leg} answered and joined the conference",
            data={"leg": call.leg},
        )
    elif status in CALL_FAILED or status == "completed":
        call.state, call.error = "failed", status
        audit.record(
            session,
            at=now,
            type="bridge_failed",
            report_id=call.report_id,
            detail=f"the {call.leg} did not answer the bridge call ({status})",
            data={"leg": call.leg},
        )
