from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from routing.schemas import Instant, Phone, StrictModel, Text
from routing.staff.schemas import StaffRef
from routing.types import Category, Language


class ReportCreate(StrictModel):
    category: Category
    callback_phone: Phone
    language: Language = Language.NL
    customer_ref: Annotated[Text | None, Field(min_length=1, max_length=64)] = None
    description: Annotated[Text | None, Field(max_length=2000)] = None
    # Phone and SMS reports arrive through the telephony webhooks, not through this body.
    channel: Literal["app", "web"] = "app"
    # The customer would rather be called at this time (within 7 days): paging starts then and
    # the promise counts from then.
    callback_at: Instant | None = None


class CallbackRequest(StrictModel):
    at: Instant = Field(description="when the customer wants to be called (within 7 days)")


class Sla(BaseModel):
    met: bool | None = Field(description="true: a human accepted by the deadline; null: open")
    time_to_ack_seconds: float | None


class TimelineEntry(BaseModel):
    at: datetime
    type: str
    detail: str
    data: dict[str, object] = {}


class Escalation(BaseModel):
    chain: str | None
    exhausted: bool


class ReportRead(BaseModel):
    id: str
    reference: str
    status: str
    category: str
    channel: str
    language: str
    callback_phone: str
    customer_ref: str | None
    description: str | None
    received_at: datetime
    deadline_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: StaffRef | None
    resolved_at: datetime | None
    resolved_by: StaffRef | None
    callback_at: datetime | None = Field(
        description="the time the customer asked to be called back; the promise counts from it"
    )
    contacts: int = Field(description="customer contacts in this case (reports, calls, SMS)")
    sla: Sla
    escalation: Escalation
    timeline: list[TimelineEntry]
    status_url: str | None = Field(
        None,
        description="the customer's live status page; only in the response to POST /v1/reports "
        "(only a hash of its secret is stored; each response has a fresh link, earlier ones keep "
        "working)",
    )
