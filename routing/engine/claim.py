"""Claiming due rows with a lease and a fence.

One statement per claim: `UPDATE … WHERE id IN (SELECT … ORDER BY due … LIMIT n FOR UPDATE SKIP
LOCKED) RETURNING …`. SQLAlchemy drops the lock clause on SQLite, where the write transaction is
already exclusive, so both backends run the same code. The claim bumps `fence`; the follow-up
transaction only counts if the fence still matches, so a worker that lost its lease cannot act.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, select, update
from sqlalchemy.ext.asyncio import AsyncSession


async def claim(
    session: AsyncSession,
    model: Any,
    *,
    where: Sequence[ColumnElement[bool]],
    order_by: Any,
    values: dict[str, Any],
    returning: Sequence[Any],
    limit: int,
) -> Sequence[Row[Any]]:
    due = (
        select(model.id)
        .where(*where)
        .order_by(order_by)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    stmt = (
        update(model)
        .where(model.id.in_(due.scalar_subquery()))
        .values(fence=model.fence + 1, **values)
        .returning(model.id, model.fence, *returning)
        .execution_options(synchronize_session=False)
    )
    return (await session.execute(stmt)).all()


async def lost_sends(
    session: AsyncSession, model: Any, *, now: datetime, limit: int
) -> Sequence[Row[Any]]:
    """Rows of `model` (pages, texts) still `sending` after their lease ran out: the worker died
    mid-send, so the provider may have them. Locked (skipping rows another engine holds);
    `(id, fence)` each, for a fenced "outcome unknown"."""
    return (
        await session.execute(
            select(model.id, model.fence)
            .where(model.state == "sending", model.lease_until < now)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    ).all()


def seconds_late(due_at: datetime, now: datetime, *, slack: float) -> float:
    """How late a row fires, or 0 when within `slack` (normal claim latency is not lateness)."""
    late = (now - due_at).total_seconds()
    return late if late > slack else 0.0
