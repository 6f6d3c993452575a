"""The engine's own bookkeeping: heartbeats of its periodic modules."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, ScalarSelect, String, func, literal, select
from sqlalchemy.orm import Mapped, mapped_column

from routing.db import Base, UTCDateTime

NEVER = datetime(1970, 1, 1, tzinfo=UTC)


class Heartbeat(Base):
    """The last completed run of a periodic engine module (the auditor), and when it runs next.

    `beat_at` is written only when a run finished, so an outside monitor (`GET /heartbeat`) sees
    a dead module, or a dead engine, as a beat that grows old. `due_at` is the module's own due
    row: the engine's idle check reads it, so a quiet system costs one indexed lookup. `detail`
    holds what the last run found (counts only, no customer data) and when each kind of finding
    was last reported to the operators.
    """

    __tablename__ = "heartbeats"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    beat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


def next_run(name: str) -> ScalarSelect[Any]:
    """When the periodic module `name` runs next, for its `due()` (no row yet, as in a new
    database: at once)."""
    return (
        select(func.coalesce(func.max(Heartbeat.due_at), literal(NEVER, UTCDateTime())))
        .where(Heartbeat.name == name)
        .scalar_subquery()
    )
