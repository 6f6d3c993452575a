from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationInfo,
    field_validator,
    model_serializer,
)

from providers.base import Channel
from routing.schemas import StrictModel, Text
from routing.types import Category

StaffIds = Annotated[list[Annotated[Text, Field(min_length=1, max_length=36)]], Field(min_length=1)]
# Schedules by id or by name: "whoever is on call in fraud-primary when the step fires".
ScheduleRefs = Annotated[
    list[Annotated[Text, Field(min_length=1, max_length=120)]], Field(max_length=20)
]


class _Targets(StrictModel):
    schedules: ScheduleRefs = Field(default_factory=list)
    targets: Annotated[
        list[Annotated[Text, Field(min_length=1, max_length=36)]],
        Field(max_length=50, validate_default=True),
    ] = Field(default_factory=list)

    @field_validator("targets")
    @classmethod
    def _someone(cls, value: list[str], info: ValidationInfo) -> list[str]:
        if not value and not info.data.get("schedules"):
            raise ValueError("give at least one staff id here, or a schedule in schedules")
        return value


class StepIn(_Targets):
    channel: Channel
    wait_seconds: Annotated[int, Field(ge=5, le=3600)]


class LastResortIn(StrictModel):
    channel: Channel = Channel.VOICE
    targets: StaffIds


class AllHandsIn(_Targets):
    """Paged all at once, in parallel, when the promise is at risk."""

    channel: Channel = Channel.VOICE


def _last_resort_shorthand(value: Any) -> Any:
    """`"last_resort": "<staff id>"` is short for a voice call to that one person."""
    return {"channel": "voice", "targets": [value]} if isinstance(value, str) else value


class ChainCreate(StrictModel):
    name: Annotated[Text, Field(min_length=1, max_length=120)]
    categories: list[Category] = Field(default_factory=list)
    steps: Annotated[list[StepIn], Field(min_length=1, max_length=50)]
    repeat: Annotated[int, Field(ge=0, le=20)] = 0
    last_resort: Annotated[LastResortIn | None, BeforeValidator(_last_resort_shorthand)] = None
    all_hands: AllHandsIn | None = None

    @field_validator("categories")
    @classmethod
    def _unique(cls, value: list[Category]) -> list[Category]:
        return list(dict.fromkeys(value))


class StepRead(BaseModel):
    channel: str
    targets: list[str]
    schedules: list[str] = Field(
        default_factory=list, description="schedule ids; left out when the step has none"
    )
    wait_seconds: int

    @model_serializer(mode="wrap")
    def _without_empty_schedules(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if not data.get("schedules"):
            data.pop("schedules", None)
        return data


class AllHandsRead(BaseModel):
    channel: str
    targets: list[str]
    schedules: list[str]


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
    all_hands: AllHandsRead | None = None
    created_at: datetime
