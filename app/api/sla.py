"""The verdict on the promise over a period."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter

from app.api.responses import API, errors
from app.deps import DbDep, StaffOrAdmin
from routing import sla
from routing.errors import ValidationFailed
from routing.schemas import Instant

router = APIRouter(prefix="/v1/sla", tags=["sla"], responses=API)


@router.get("", response_model=sla.SlaSummary, responses=errors(422))
async def read_sla(
    _: StaffOrAdmin,
    db: DbDep,
    since: Instant | None = None,
    until: Instant | None = None,
) -> sla.SlaSummary:
    """Reports received in [since, until): met, missed, open, and time to accept."""
    since, until = _utc(since, "since"), _utc(until, "until")
    if since is not None and until is not None and until <= since:
        raise ValidationFailed("until must be after since", field="until")
    async with db() as session:
        return await sla.summarize(session, since=since, until=until)


def _utc(value: datetime | None, field: str) -> datetime | None:
    if value is None:
        return None
    try:
        return value.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before the first UTC date
        raise ValidationFailed(f"{field} is outside the supported dates", field=field) from None
