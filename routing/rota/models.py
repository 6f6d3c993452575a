from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from routing.db import Base, UTCDateTime, new_id


class Schedule(Base):
    """Who is on call when: rotation layers in one time zone, with overrides on top.

    `layers` is stored as the API gave it (see `routing.rota.schemas.LayerIn`); the last layer with
    someone on call at a moment wins, like sheets stacked on a table.
    """

    __tablename__ = "schedules"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    time_zone: Mapped[str] = mapped_column(String(64))
    layers: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ScheduleOverride(Base):
    """A temporary change to a schedule: `replace` (staff takes `replaces_staff_id`'s shifts),
    `add` (staff is on call too) or `remove` (staff is off), from `starts_at` to `ends_at`."""

    __tablename__ = "schedule_overrides"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    schedule_id: Mapped[str] = mapped_column(ForeignKey("schedules.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    staff_id: Mapped[str] = mapped_column(ForeignKey("staff.id"))
    replaces_staff_id: Mapped[str | None] = mapped_column(ForeignKey("staff.id"))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_schedule_overrides_schedule_ends", "schedule_id", "ends_at"),)
