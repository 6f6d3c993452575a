"""What the SMS and call pumping guard stopped (admin only): the breakers open now and the latest
blocked sends, and resetting a breaker before its cool-down ends."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from app.api.responses import API, errors
from app.deps import Admin, DbDep, NowDep
from routing.pumping import service as pumping
from routing.pumping.schemas import BlockRead, BlocksRead, BreakerRead

router = APIRouter(prefix="/v1/admin/blocks", tags=["admin"], responses=API)

BreakerId = Annotated[int, Path(ge=1, le=2**63 - 1)]


@router.get("", response_model=BlocksRead)
async def list_blocks(_: Admin, db: DbDep, now: NowDep) -> BlocksRead:
    async with db() as session:
        breakers = await pumping.open_breakers(session, now)
        blocks = await pumping.recent_blocks(session)
        return BlocksRead(
            breakers=[BreakerRead.model_validate(b) for b in breakers],
            blocks=[BlockRead.model_validate(b) for b in blocks],
        )


@router.post("/breakers/{breaker_id}/reset", response_model=BreakerRead, responses=errors(404, 422))
async def reset_breaker(breaker_id: BreakerId, admin: Admin, db: DbDep, now: NowDep) -> BreakerRead:
    """Customer texts and calls in the breaker's scope may go out again at once."""
    async with db.begin() as session:
        breaker = await pumping.reset(session, breaker_id=breaker_id, actor=admin.token_id, now=now)
        return BreakerRead.model_validate(breaker)
