"""Request and response bodies of the phone verification API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from routing.schemas import StrictModel


class VerificationStart(StrictModel):
    channel: Literal["sms", "voice"] = Field(
        default="sms", description="how the code reaches the phone: an SMS, or a call that says it"
    )


class VerificationStarted(BaseModel):
    expires_at: datetime = Field(description="the code works until then (10 minutes)")


class VerificationConfirm(StrictModel):
    code: Annotated[str, Field(pattern=r"^[0-9]{6}$", description="the 6 digits received")]
