"""The verdict on the promise over a period: how many reports, met, missed, and time to accept."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from routing.report.models import Report


class TimeToAck(BaseModel):
    p50: float | None
    p90: float | None
    p99: float | None
    max: float | None


class SlaSummary(BaseModel):
    since: datetime | None
    until: datetime | None
    reports: int
    met: int
    missed: int
    open: int
    met_ratio: float | None
    time_to_ack_seconds: TimeToAck


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (the usual `numpy.percentile` default)."""
    if not sorted_values:
        return None
    pos = (len(sorted_values) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


async def summarize(
    session: AsyncSession, *, since: datetime | None, until: datetime | None
) -> SlaSummary:
    query = select(Report.sla_met, Report.received_at, Report.acknowledged_at)
    if since is not None:
        query = query.where(Report.received_at >= since)
    if until is not None:
        query = query.where(Report.received_at < until)
    rows = (await session.execute(query)).all()
    met = sum(1 for r in rows if r.sla_met is True)
    missed = sum(1 for r in rows if r.sla_met is False)
    acks = sorted(
        (r.acknowledged_at - r.received_at).total_seconds() for r in rows if r.acknowledged_at
    )
    return SlaSummary(
        since=since,
        until=until,
        reports=len(rows),
        met=met,
        missed=missed,
        open=len(rows) - met - missed,
        met_ratio=round(met / (met + missed), 4) if met + missed else None,
        time_to_ack_seconds=TimeToAck(
            p50=percentile(acks, 0.5),
            p90=percentile(acks, 0.9),
            p99=percentile(acks, 0.99),
            max=acks[-1] if acks else None,
        ),
    )
