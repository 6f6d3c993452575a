"""Staff use cases."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from providers.base import Channel
from routing.audit import service as audit
from routing.audit.service import EventType
from routing.errors import NotFound
from routing.staff.models import Staff
from routing.staff.schemas import StaffCreate


async def create(
    session: AsyncSession, *, data: StaffCreate, now: datetime, actor: str | None = None
) -> Staff:
    """Add a staff member; `actor`: the token (or tool) that did it, for the audit log."""
    staff = Staff(
        name=data.name,
        phone=data.phone,
        languages=[str(lang) for lang in data.languages],
        chat_id=data.chat_id,
        skills=list(data.skills),
        created_at=now,
    )
    session.add(staff)
    await session.flush()
    audit.record(
        session,
        at=now,
        type=EventType.STAFF_CREATED,
        actor=actor,
        detail=f"staff member {staff.id} added",
        data={"staff_id": staff.id},
    )
    return staff


async def list_all(session: AsyncSession) -> Sequence[Staff]:
    return (await session.scalars(select(Staff).order_by(Staff.created_at, Staff.id))).all()


async def get(session: AsyncSession, staff_id: str) -> Staff:
    staff = await session.get(Staff, staff_id)
    if staff is None:
        raise NotFound("no such staff member", field="staff_id")
    return staff


async def find_many(session: AsyncSession, ids: Iterable[str]) -> dict[str, Staff]:
    wanted = set(ids)
    if not wanted:
        return {}
    rows = await session.scalars(select(Staff).where(Staff.id.in_(wanted)))
    return {s.id: s for s in rows}


def unreachable(channel: str, staff: Staff) -> str | None:
    """Why `staff` cannot be paged on `channel` at all, if so (`None`: they can be)."""
    if channel == Channel.CHAT and not staff.chat_id:
        return "no chat id"
    if channel == Channel.SMS and staff.sms_stopped_at is not None:
        return "SMS turned off (STOP)"
    return None
