"""Schedules, their layers and overrides, as the API and the rota file give them."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)

from routing.schemas import Instant, StrictModel, Text
from routing.staff.schemas import StaffRef

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_OVERRIDE = timedelta(days=366)

_HHMM = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")


def _hhmm(value: Any) -> Any:
    if isinstance(value, time):
        return value
    if isinstance(value, str) and (found := _HHMM.fullmatch(value.strip())):
        return time(int(found.group(1)), int(found.group(2)))
    raise ValueError('give a local time as "HH:MM" (00:00 to 23:59), e.g. "09:00"')


LocalTime = Annotated[
    time,
    BeforeValidator(_hhmm),
    PlainSerializer(lambda t: t.strftime("%H:%M"), return_type=str),
    WithJsonSchema(
        {"type": "string", "pattern": r"^([01]\d|2[0-3]):[0-5]\d$", "examples": ["09:00"]}
    ),
]
"""A wall-clock time in the schedule's zone, written "HH:MM"."""


def _known_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"{value!r} is not a known time zone; give an IANA name such as Europe/Amsterdam"
        ) from None
    return value


TimeZoneName = Annotated[Text, Field(min_length=1, max_length=64), AfterValidator(_known_zone)]
StaffIdIn = Annotated[Text, Field(min_length=1, max_length=36)]


class ActiveIn(StrictModel):
    """When a layer covers anyone: on `days`, from `from` to `to` local time. A window whose `to`
    is not after `from` runs past midnight into the next day (`from` = `to`: 24 hours)."""

    days: Annotated[list[Weekday], Field(min_length=1)] = Field(
        default_factory=lambda: list(WEEKDAYS)
    )
    from_: Annotated[LocalTime, Field(alias="from")] = time(0, 0)
    to: LocalTime = time(0, 0)

    @field_validator("days")
    @classmethod
    def _unique_days(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))


class LayerIn(StrictModel):
    """One rotation: `members` take turns, one shift each, handing over at `handoff_time` every day
    (`daily`) or every week on `start_date`'s weekday (`weekly`). Member 0's first shift starts on
    `start_date` at `handoff_time`; before that the layer covers nobody."""

    name: Annotated[Text, Field(min_length=1, max_length=120)]
    members: Annotated[list[StaffIdIn], Field(min_length=1, max_length=100)]
    rotation: Literal["daily", "weekly"]
    handoff_time: LocalTime
    start_date: date
    active: ActiveIn | None = None


class ScheduleCreate(StrictModel):
    """A schedule: layers in one time zone (default: the service's, SOS_TIME_ZONE). The last layer
    with someone on call at a moment wins. PUT takes the same body and replaces everything."""

    name: Annotated[Text, Field(min_length=1, max_length=120)]
    time_zone: TimeZoneName | None = None
    layers: Annotated[list[LayerIn], Field(min_length=1, max_length=20)]

    @field_validator("layers")
    @classmethod
    def _unique_layer_names(cls, value: list[LayerIn]) -> list[LayerIn]:
        seen: set[str] = set()
        for layer in value:
            if layer.name in seen:
                raise ValueError(f"two layers are named {layer.name!r}; give each its own name")
            seen.add(layer.name)
        return value


def _utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("outside the supported dates") from None


UtcDatetime = Annotated[Instant, AfterValidator(_utc)]


class OverrideCreate(StrictModel):
    """A temporary change from `starts_at` (inclusive) to `ends_at` (exclusive): `replace` puts
    `staff_id` in the place of `replaces_staff_id` while that person is on call, `add` puts
    `staff_id` on call too, `remove` takes `staff_id` off."""

    kind: Literal["replace", "add", "remove"]
    staff_id: StaffIdIn
    replaces_staff_id: Annotated[StaffIdIn | None, Field(validate_default=True)] = None
    starts_at: UtcDatetime
    ends_at: UtcDatetime

    @field_validator("replaces_staff_id")
    @classmethod
    def _replaces_only_for_replace(cls, value: str | None, info: ValidationInfo) -> str | None:
        kind = info.data.get("kind")
        if kind == "replace" and value is None:
            raise ValueError("a replace override names whose shifts it takes")
        if kind in ("add", "remove") and value is not None:
            raise ValueError(f"only a replace override has this; leave it out for {kind}")
        if value is not None and value == info.data.get("staff_id"):
            raise ValueError("a person cannot replace themselves")
        return value

    @field_validator("ends_at")
    @classmethod
    def _after_start(cls, value: datetime, info: ValidationInfo) -> datetime:
        starts_at = info.data.get("starts_at")
        if starts_at is None:
            return value
        if value <= starts_at:
            raise ValueError("must be after starts_at")
        if value - starts_at > MAX_OVERRIDE:
            raise ValueError("an override lasts at most a year (366 days)")
        return value


class ScheduleRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    time_zone: str
    layers: list[LayerIn]
    created_at: datetime
    updated_at: datetime


class OverrideRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    schedule_id: str
    kind: str
    staff_id: str
    replaces_staff_id: str | None
    starts_at: datetime
    ends_at: datetime
    created_at: datetime


class OnCallSchedule(BaseModel):
    id: str
    name: str
    time_zone: str
    on_call: list[StaffRef]
    until: datetime | None = Field(
        description="when this set of people next changes; null: not within 7 days"
    )


class OnCallRead(BaseModel):
    at: datetime
    schedules: list[OnCallSchedule]
