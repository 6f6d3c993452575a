from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from routing.schemas import Phone, StrictModel, Text
from routing.types import Language

# A skill tag: lower-case letters, digits, `-` and `_` (`fraud`, `cards`, `business-banking`).
Skill = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")]


class StaffCreate(StrictModel):
    name: Annotated[Text, Field(min_length=1, max_length=120)]
    phone: Phone
    languages: Annotated[list[Language], Field(min_length=1, default_factory=lambda: [Language.NL])]
    chat_id: Annotated[Text | None, Field(min_length=1, max_length=120)] = None
    skills: Annotated[list[Skill], Field(max_length=20)] = Field(default_factory=list)

    @field_validator("skills")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))


class StaffRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    phone: str
    languages: list[str]
    chat_id: str | None
    skills: list[str]
    phone_verified_at: datetime | None = Field(
        description="when the person last confirmed a code sent to this phone; null: never"
    )
    sms_stopped_at: datetime | None = Field(
        description="set while the person has texted STOP: no SMS pages reach them"
    )
    created_at: datetime


class StaffRef(BaseModel):
    id: str
    name: str
