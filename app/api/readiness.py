"""What would let the promise break before any report arrives (staff and admin)."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.responses import API
from app.deps import DbDep, NowDep, StaffOrAdmin
from routing import readiness

router = APIRouter(prefix="/v1/readiness", tags=["readiness"], responses=API)


@router.get("", response_model=readiness.Readiness)
async def read_readiness(_: StaffOrAdmin, db: DbDep, now: NowDep) -> readiness.Readiness:
    """Coverage gaps in the next 7 days, unverified and STOP staff, unreachable chains."""
    async with db() as session:
        return await readiness.check(session, now=now)
