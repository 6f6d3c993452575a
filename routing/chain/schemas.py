from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from providers.base import Channel
from routing.schemas import StrictModel, Text
from routing.types import Category

StaffIds = Annotated[list[Annotated[Text, Field(min_length=1, max_length=36)]], Field(min_length=1)]


class StepIn(StrictModel):
    channel: Channel
    targets: StaffIds
    wait_seconds: Annotated[int, Field(ge=5, le=3600)]


class LastResortIn(StrictModel):
    channel: Channel = Channel.VOICE
    targets: StaffIds


def _last_resort_shorthand(value: Any) -> Any:
    """`"last_resort": "<staff id>"` is short for a voice call to that one person."""
    return {"channel": "voice", "targets": [value]} if isinstance(value, str) else value


class ChainCreate(StrictModel):
    name: Annotated[Text, Field(min_length=1, max_length=120)]
    categories: list[Category] = Field(default_factory=list)
    steps: Annotated[list[StepIn], Field(min_length=1, max_length=50)]
    repeat: Annotated[int, Field(ge=0, le=20)] = 0
    last_resort: Annotated[LastResortIn | None, BeforeValidator(_last_resort_shorthand)] = None

    @field_validator("categories")
    @classmethod
    def _unique(cls, value: list[Category]) -> list[Category]:
        return list(dict.fromkeys(value))


class StepRead(BaseModel):
    channel: str
    targets: list[str]
    wait_seconds: int


class LastResortRead(BaseModel):
    channel: str
    targets: list[str]


class ChainRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    categories: list[str]
    steps: list[StepRead]
    repeat: int
    last_resort: LastResortRead | None
    created_at: datetime
