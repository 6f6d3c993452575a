from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from routing.schemas import Phone, StrictModel, Text
from routing.types import Language


class StaffCreate(StrictModel):
    name: Annotated[Text, Field(min_length=1, max_length=120)]
    phone: Phone
    languages: Annotated[list[Language], Field(min_length=1, default_factory=lambda: [Language.NL])]
    chat_id: Annotated[Text | None, Field(min_length=1, max_length=120)] = None


class StaffRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    phone: str
    languages: list[str]
    chat_id: str | None
    sms_stopped_at: datetime | None = Field(
        description="set while the person has texted STOP: no SMS pages reach them"
    )
    created_at: datetime


class StaffRef(BaseModel):
    id: str
    name: str
