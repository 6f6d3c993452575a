from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from routing.db import Base, UTCDateTime, new_id


class Staff(Base):
    """A person who can be paged. `phone` is E.164; `languages` lists ISO codes they speak."""

    __tablename__ = "staff"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(120))
    phone: Mapped[str] = mapped_column(String(20))
    languages: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Free-form skill tags (`fraud`, `cards`): reports needing one page its holders first.
    skills: Mapped[list[str]] = mapped_column(JSON, default=list)
    chat_id: Mapped[str | None] = mapped_column(String(120))
    # When the person confirmed a code sent to `phone`; cleared when the phone changes.
    phone_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Set when the person texted STOP: the carrier blocks our SMS to them until START.
    sms_stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
