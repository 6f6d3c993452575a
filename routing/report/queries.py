"""Read models for the console: open reports with their pages, and the SLA log."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from routing.page.models import Page
from routing.report.models import Report
from routing.staff.models import Staff
from routing.types import ReportStatus


@dataclass(frozen=True, slots=True)
class PageLine:
    staff_name: str
    channel: str
    state: str


@dataclass(slots=True)
class OpenReport:
    report: Report
    holder: str | None
    pages: list[PageLine] = field(default_factory=list)

    def seconds_left(self, now: datetime) -> float:
        return (self.report.deadline_at - now).total_seconds()


async def open_reports(session: AsyncSession, *, now: datetime) -> list[OpenReport]:
    """Reports not yet resolved, the one closest to (or furthest past) its deadline first."""
    reports = list(
        await session.scalars(
            select(Report)
            .where(Report.status != ReportStatus.RESOLVED)
            .order_by(Report.deadline_at, Report.id)
            .limit(500)
        )
    )
    if not reports:
        return []
    names = {s.id: s.name for s in await session.scalars(select(Staff))}
    rows = {r.id: OpenReport(r, names.get(r.acknowledged_by_id or "")) for r in reports}
    pages = await session.scalars(select(Page).where(Page.report_id.in_(rows)).order_by(Page.id))
    for page in pages:
        rows[page.report_id].pages.append(
            PageLine(names.get(page.staff_id, "?"), page.channel, page.state)
        )
    del now
    return list(rows.values())


@dataclass(frozen=True, slots=True)
class SlaRow:
    reference: str
    channel: str
    category: str
    received_at: datetime
    acknowledged_at: datetime | None
    time_to_ack_seconds: float | None
    met: bool | None


async def sla_log(session: AsyncSession, *, since: datetime, until: datetime) -> list[SlaRow]:
    rows = await session.scalars(
        select(Report)
        .where(Report.received_at >= since, Report.received_at < until)
        .order_by(Report.received_at, Report.id)
    )
    return [
        SlaRow(
            r.reference,
            r.channel,
            r.category,
            r.received_at,
            r.acknowledged_at,
            (r.acknowledged_at - r.received_at).total_seconds() if r.acknowledged_at else None,
            r.sla_met,
        )
        for r in rows
    ]


@dataclass(frozen=True, slots=True)
class Day:
    day: date
    met: int
    missed: int

    @property
    def share(self) -> float | None:
        judged = self.met + self.missed
        return self.met / judged if judged else None


def per_day(rows: Sequence[SlaRow], *, last: date, days: int) -> list[Day]:
    """Met and missed per UTC day, for the `days` days ending with `last` (empty days included)."""
    counts: dict[date, list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:
        if row.met is not None:
            counts[row.received_at.date()][0 if row.met else 1] += 1
    first = last - timedelta(days=days - 1)
    return [
        Day(first + timedelta(days=i), *counts.get(first + timedelta(days=i), [0, 0]))
        for i in range(days)
    ]


def histogram(rows: Sequence[SlaRow], *, bucket_seconds: int = 60, buckets: int = 15) -> list[int]:
    """Counts of time to acknowledgement per bucket; the last bucket holds everything later."""
    counts = [0] * buckets
    for row in rows:
        if row.time_to_ack_seconds is not None:
            counts[min(int(row.time_to_ack_seconds // bucket_seconds), buckets - 1)] += 1
    return counts
