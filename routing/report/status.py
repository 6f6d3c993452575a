"""The customer's status page: an unguessable per-report token, and what the customer may see.

The token is random (256 bits, 43 URL-safe characters) and handed out once; only its SHA-256 is
stored (`StatusToken.token_hash`), so a database reader cannot open anyone's status page.
What the customer sees (`customer_view`) holds nothing the customer did not enter themselves,
and of the staff only the first name of the person who accepted.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from routing.guard import one_line
from routing.report.models import Report, StatusToken
from routing.sql import Raw
from routing.staff.models import Staff
from routing.types import ReportStatus

TOKEN_BYTES = 32
# token_urlsafe(32) is 43 characters; anything far outside that cannot be a token.
TOKEN_LENGTHS = range(40, 101)


class CustomerState(StrEnum):
    """Where a report stands, in the customer's terms."""

    SCHEDULED = "scheduled"  # the customer asked to be called at a later time; not yet
    PAGING = "paging"  # we are calling colleagues; the promise still runs
    MISSED = "missed"  # the promised time passed and nobody accepted yet; we keep calling
    ACCEPTED = "accepted"  # a colleague has the case and will call the customer
    RESOLVED = "resolved"  # the case is closed


@dataclass(frozen=True, slots=True)
class CustomerView:
    reference: str
    state: CustomerState
    helper: str | None  # first name of the colleague who accepted
    category: str
    language: str
    callback_phone: str  # the customer's own number: the caller decides how much of it to show
    deadline_at: datetime
    callback_at: datetime | None = None  # the time the customer asked to be called


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def new_status_token(session: AsyncSession, report: Report, *, now: datetime) -> str:
    """Give `report` a fresh status token and return it; only its hash is stored (flushed, not
    committed). Earlier tokens of the report keep working (a customer who reported in the app and
    then on the web has two links to one case)."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    await session.flush()  # the report row first
    row = {"token_hash": hash_token(token), "report_id": report.id, "created_at": now}
    await (await Raw.of(session)).insert(StatusToken, [row])
    return token


async def find_by_status_token(session: AsyncSession, token: str) -> Report | None:
    """The report whose status token is `token`, or None (also for anything malformed)."""
    if len(token) not in TOKEN_LENGTHS:
        return None
    found: Report | None = await session.scalar(
        select(Report)
        .join(StatusToken, StatusToken.report_id == Report.id)
        .where(StatusToken.token_hash == hash_token(token))
    )
    return found


def state_of(report: Report, now: datetime) -> CustomerState:
    """MISSED as soon as the deadline has passed unaccepted, even before the engine has written
    its verdict: the customer's clock is the one on the page."""
    if report.status == ReportStatus.RESOLVED:
        return CustomerState.RESOLVED
    if report.acknowledged_by_id is not None:
        return CustomerState.ACCEPTED
    if report.callback_at is not None and now < report.callback_at:
        return CustomerState.SCHEDULED
    if report.sla_met is False or now > report.deadline_at:
        return CustomerState.MISSED
    return CustomerState.PAGING


def first_name(name: str) -> str:
    parts = name.split()
    return parts[0] if parts else name


async def customer_view(session: AsyncSession, report: Report, *, now: datetime) -> CustomerView:
    """What the status page of `report` may show."""
    helper = None
    if report.acknowledged_by_id is not None:
        staff = await session.get(Staff, report.acknowledged_by_id)
        helper = one_line(first_name(staff.name)) if staff is not None else None
    return CustomerView(
        reference=report.reference,
        state=state_of(report, now),
        helper=helper,
        category=report.category,
        language=report.language,
        callback_phone=report.callback_phone,
        deadline_at=report.deadline_at,
        callback_at=report.callback_at,
    )
