from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class BreakerRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    scope: str = Field(description="number, prefix (the number without its last 4 digits), global")
    label: str = Field(description="what is stopped: a masked number, a prefix, or all")
    reason: str
    opened_at: datetime
    open_until: datetime
    closed_at: datetime | None = Field(description="when an admin reset it early")
    closed_by: str | None = Field(description="the token of the admin who reset it")


class BlockRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    at: datetime
    report_id: str | None
    channel: str
    to: str = Field(description="the number, masked to its last 2 digits")
    reason: str = Field(
        description="invalid_number, country, number_type, number_breaker, prefix_breaker, "
        "global_breaker"
    )
    detail: str


class BlocksRead(BaseModel):
    breakers: list[BreakerRead] = Field(description="breakers open now")
    blocks: list[BlockRead] = Field(description="the latest blocked sends, newest first")
