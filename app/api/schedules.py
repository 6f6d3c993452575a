"""Schedules and their overrides (admin writes, staff and admin read), and who is on call."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from fastapi import APIRouter, Response

from app.api.responses import API, BODY, errors
from app.deps import Admin, ContainerDep, DbDep, NowDep, StaffOrAdmin
from routing.errors import ValidationFailed
from routing.rota import service as rota_service
from routing.rota.schemas import (
    OnCallRead,
    OnCallSchedule,
    OverrideCreate,
    OverrideRead,
    ScheduleCreate,
    ScheduleRead,
)
from routing.staff.schemas import StaffRef

router = APIRouter(tags=["schedules"], responses=API)

# `+02:00` in a query string arrives as ` 02:00` when the client did not encode the `+`.
_UNENCODED_PLUS = re.compile(r"(T\d\d:\d\d(?::\d\d(?:\.\d+)?)?) (\d\d(?::?\d\d)?)$")


@router.post(
    "/v1/schedules", status_code=201, response_model=ScheduleRead, responses={**errors(409), **BODY}
)
async def create_schedule(
    body: ScheduleCreate, admin: Admin, container: ContainerDep, db: DbDep, now: NowDep
) -> ScheduleRead:
    async with db.begin() as session:
        schedule = await rota_service.create(
            session,
            data=body,
            default_time_zone=container.settings.time_zone,
            now=now,
            actor=admin.token_id,
        )
        return ScheduleRead.model_validate(schedule)


@router.get("/v1/schedules", response_model=list[ScheduleRead])
async def list_schedules(_: StaffOrAdmin, db: DbDep) -> list[ScheduleRead]:
    async with db() as session:
        return [ScheduleRead.model_validate(s) for s in await rota_service.list_all(session)]


@router.get("/v1/schedules/{schedule_id}", response_model=ScheduleRead, responses=errors(404, 422))
async def read_schedule(schedule_id: str, _: StaffOrAdmin, db: DbDep) -> ScheduleRead:
    async with db() as session:
        return ScheduleRead.model_validate(await rota_service.get(session, schedule_id))


@router.put(
    "/v1/schedules/{schedule_id}",
    response_model=ScheduleRead,
    responses={**errors(404, 409), **BODY},
)
async def replace_schedule(
    schedule_id: str,
    body: ScheduleCreate,
    admin: Admin,
    container: ContainerDep,
    db: DbDep,
    now: NowDep,
) -> ScheduleRead:
    async with db.begin() as session:
        schedule = await rota_service.update(
            session,
            schedule_id=schedule_id,
            data=body,
            default_time_zone=container.settings.time_zone,
            now=now,
            actor=admin.token_id,
        )
        return ScheduleRead.model_validate(schedule)


@router.delete(
    "/v1/schedules/{schedule_id}",
    status_code=204,
    response_class=Response,
    responses=errors(404, 409, 422),
)
async def delete_schedule(schedule_id: str, admin: Admin, db: DbDep, now: NowDep) -> Response:
    async with db.begin() as session:
        await rota_service.delete(session, schedule_id=schedule_id, now=now, actor=admin.token_id)
    return Response(status_code=204)


@router.post(
    "/v1/schedules/{schedule_id}/overrides",
    status_code=201,
    response_model=OverrideRead,
    responses={**errors(404), **BODY},
)
async def create_override(
    schedule_id: str, body: OverrideCreate, admin: Admin, db: DbDep, now: NowDep
) -> OverrideRead:
    async with db.begin() as session:
        override = await rota_service.add_override(
            session, schedule_id=schedule_id, data=body, now=now, actor=admin.token_id
        )
        return OverrideRead.model_validate(override)


@router.get(
    "/v1/schedules/{schedule_id}/overrides",
    response_model=list[OverrideRead],
    responses=errors(404, 422),
)
async def list_overrides(
    schedule_id: str, _: StaffOrAdmin, db: DbDep, now: NowDep
) -> list[OverrideRead]:
    """The overrides that are not over yet: current and future."""
    async with db() as session:
        overrides = await rota_service.list_overrides(session, schedule_id=schedule_id, now=now)
        return [OverrideRead.model_validate(o) for o in overrides]


@router.delete(
    "/v1/schedules/{schedule_id}/overrides/{override_id}",
    status_code=204,
    response_class=Response,
    responses=errors(404, 422),
)
async def delete_override(
    schedule_id: str, override_id: str, admin: Admin, db: DbDep, now: NowDep
) -> Response:
    async with db.begin() as session:
        await rota_service.delete_override(
            session,
            schedule_id=schedule_id,
            override_id=override_id,
            now=now,
            actor=admin.token_id,
        )
    return Response(status_code=204)


@router.get("/v1/oncall", response_model=OnCallRead, responses=errors(404, 422))
async def read_oncall(
    _: StaffOrAdmin,
    db: DbDep,
    now: NowDep,
    at: str | None = None,
    schedule: str | None = None,
) -> OnCallRead:
    """Who is on call at `at` (ISO 8601 with a zone offset; default now) in every schedule, or
    in the one `schedule` names (id or name), and until when (null: no change within 7 days)."""
    when = now if at is None else parse_instant(at, field="at")
    async with db() as session:
        found = await rota_service.who_is_on_call(session, at=when, schedule_ref=schedule)
    return OnCallRead(
        at=when,
        schedules=[
            OnCallSchedule(
                id=item.schedule.id,
                name=item.schedule.name,
                time_zone=item.schedule.time_zone,
                on_call=[StaffRef(id=s.id, name=s.name) for s in item.staff],
                until=item.until,
            )
            for item in found
        ],
    )


def parse_instant(raw: str, *, field: str) -> datetime:
    """An ISO 8601 instant with a zone offset (`Z` or `+02:00`), as UTC; else a 422 naming
    `field`."""
    text = _UNENCODED_PLUS.sub(r"\1+\2", raw.strip())
    try:
        value = datetime.fromisoformat(text) if len(text) <= 64 else None
    except ValueError:
        value = None
    if value is None:
        raise ValidationFailed(
            f"{field} is not an ISO 8601 date and time, e.g. 2026-03-29T20:00:00+02:00",
            field=field,
        )
    if value.tzinfo is None:
        raise ValidationFailed(
            f"{field} needs a zone offset, e.g. 2026-03-29T20:00:00+02:00 or …Z", field=field
        )
    try:
        value = value.astimezone(UTC)
        if not 1 < value.year < 9999:
            raise OverflowError
    except OverflowError:
        raise ValidationFailed(f"{field} is outside the supported dates", field=field) from None
    return value
