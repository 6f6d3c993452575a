from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from routing.db import Base, UTCDateTime, new_id


class Chain(Base):
    """An escalation chain; `steps` and `last_resort` are stored as the API gave them.

    A report copies the whole chain when it arrives: editing a chain never changes a running
    escalation.
    """

    __tablename__ = "chains"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(120))
    categories: Mapped[list[str]] = mapped_column(JSON, default=list)
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    repeat: Mapped[int] = mapped_column(Integer, default=0)
    last_resort: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Paged all at once when the promise is at risk (deadline - SOS_PREBREACH_SECONDS).
    all_hands: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
