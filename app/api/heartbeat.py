"""`GET /heartbeat`: for an outside monitor (an uptime checker) to poll.

The escalation auditor beats once per interval from inside the engine loop, so a beat older than
three intervals means the auditor, or the whole engine, has stopped: then 503 with `Retry-After`.
No authentication and no personal data: counts and times only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from app.api.responses import RETRY_AFTER, ErrorBody
from app.deps import ContainerDep
from routing.engine import auditor

router = APIRouter(tags=["health"])

# A beat may be this many intervals old before the auditor counts as stopped.
STALE_AFTER_INTERVALS = 3


class AuditorBeat(BaseModel):
    last_beat_at: datetime | None = Field(description="the end of the auditor's last run")
    age_seconds: float | None
    findings: dict[str, int] = Field(description="what its last run found, by kind")


class EngineTick(BaseModel):
    last_tick_at: datetime | None = Field(
        description="the last tick of this process's engine loop (null: none runs here)"
    )
    age_seconds: float | None


class HeartbeatRead(BaseModel):
    status: Literal["ok", "stale"]
    auditor: AuditorBeat
    engine: EngineTick


def _age(at: datetime | None, now: datetime) -> float | None:
    return None if at is None else round((now - at).total_seconds(), 3)


@router.get(
    "/heartbeat",
    response_model=HeartbeatRead,
    status_code=200,
    responses={
        503: {
            "model": HeartbeatRead | ErrorBody,
            "description": "the auditor's beat is stale, or the database does not answer",
            "headers": RETRY_AFTER,
        }
    },
)
async def read_heartbeat(container: ContainerDep) -> HeartbeatRead | JSONResponse:
    """200 while the auditor beats; 503 when its last beat is older than three intervals (or it
    never beat)."""
    async with container.db() as session:
        beat = await auditor.read_beat(session)
    now = container.clock.now()
    interval = container.settings.auditor.interval_seconds
    age = _age(beat.beat_at, now)
    fresh = age is not None and age <= STALE_AFTER_INTERVALS * interval
    tick = container.engine.last_tick_at
    body = HeartbeatRead(
        status="ok" if fresh else "stale",
        auditor=AuditorBeat(last_beat_at=beat.beat_at, age_seconds=age, findings=beat.findings),
        engine=EngineTick(last_tick_at=tick, age_seconds=_age(tick, now)),
    )
    if fresh:
        return body
    return JSONResponse(
        body.model_dump(mode="json"), status_code=503, headers={"Retry-After": str(interval)}
    )
