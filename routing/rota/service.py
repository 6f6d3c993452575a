"""Schedule use cases: manage schedules and overrides, and say who is on call.

Every function runs in a transaction the caller owns and never commits.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete as sql_delete
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from routing.audit import service as audit
from routing.audit.service import EventType
from routing.chain.models import Chain
from routing.errors import Conflict, NotFound, ValidationFailed
from routing.rota import oncall, usage
from routing.rota.models import Schedule, ScheduleOverride
from routing.rota.schemas import LayerIn, OverrideCreate, ScheduleCreate
from routing.staff import service as staff_service
from routing.staff.models import Staff

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def well_formed(schedule_id: str) -> bool:
    """Schedule ids are UUIDs: anything else (a NUL, a megabyte) is not found without a query."""
    return len(schedule_id) == 36 and _UUID.fullmatch(schedule_id) is not None


# --- schedules ------------------------------------------------------------------------------


async def create(
    session: AsyncSession,
    *,
    data: ScheduleCreate,
    default_time_zone: str,
    now: datetime,
    actor: str | None = None,
) -> Schedule:
    await _check_members(session, data.layers)
    await _check_name_free(session, data.name)
    schedule = Schedule(
        name=data.name,
        time_zone=data.time_zone or default_time_zone,
        layers=_stored_layers(data.layers),
        created_at=now,
        updated_at=now,
    )
    session.add(schedule)
    await _flush(session)
    _changed(session, EventType.SCHEDULE_CREATED, schedule.id, "created", now, actor)
    return schedule


async def update(
    session: AsyncSession,
    *,
    schedule_id: str,
    data: ScheduleCreate,
    default_time_zone: str,
    now: datetime,
    actor: str | None = None,
) -> Schedule:
    """Replace the schedule's name, zone and layers (its overrides stay)."""
    schedule = await get(session, schedule_id)
    await _check_members(session, data.layers)
    await _check_name_free(session, data.name, other_than=schedule.id)
    schedule.name = data.name
    schedule.time_zone = data.time_zone or default_time_zone
    schedule.layers = _stored_layers(data.layers)
    schedule.updated_at = now
    await _flush(session)
    _changed(session, EventType.SCHEDULE_CHANGED, schedule.id, "replaced", now, actor)
    return schedule


async def list_all(session: AsyncSession) -> Sequence[Schedule]:
    return (await session.scalars(select(Schedule).order_by(Schedule.name, Schedule.id))).all()


async def get(session: AsyncSession, schedule_id: str) -> Schedule:
    schedule = await session.get(Schedule, schedule_id) if well_formed(schedule_id) else None
    if schedule is None:
        raise NotFound("no such schedule", field="schedule_id")
    return schedule


async def find(session: AsyncSession, ref: str) -> Schedule | None:
    """A schedule by id or by name."""
    if well_formed(ref):
        by_id = await session.get(Schedule, ref)
        if by_id is not None:
            return by_id
    if "\x00" in ref or len(ref) > 120:
        return None
    return await session.scalar(select(Schedule).where(Schedule.name == ref))


async def delete(
    session: AsyncSession, *, schedule_id: str, now: datetime, actor: str | None = None
) -> None:
    """Delete a schedule and its overrides; refused while a chain serving new reports pages it."""
    schedule = await get(session, schedule_id)
    chains = usage.serving((await session.scalars(select(Chain))).all())
    users = [c.name for c in chains if usage.schedule_refs(c) & {schedule.id, schedule.name}]
    if users:
        raise Conflict(
            f"chain {users[0]!r} pages this schedule; give that category a chain without it first",
            field="schedule_id",
        )
    await session.execute(
        sql_delete(ScheduleOverride).where(ScheduleOverride.schedule_id == schedule.id)
    )
    await session.delete(schedule)
    await session.flush()
    _changed(session, EventType.SCHEDULE_DELETED, schedule_id, "deleted", now, actor)


async def _check_members(session: AsyncSession, layers: Sequence[LayerIn]) -> None:
    known = await staff_service.find_many(session, {m for layer in layers for m in layer.members})
    for i, layer in enumerate(layers):
        for j, member in enumerate(layer.members):
            if member not in known:
                raise ValidationFailed(
                    f"no staff member with id {member!r}", field=f"layers.{i}.members.{j}"
                )


async def _check_name_free(session: AsyncSession, name: str, other_than: str = "") -> None:
    taken = await session.scalar(
        select(Schedule.id).where(Schedule.name == name, Schedule.id != other_than)
    )
    if taken is not None:
        raise Conflict(f"a schedule named {name!r} already exists", field="name")


async def _flush(session: AsyncSession) -> None:
    try:
        await session.flush()
    except IntegrityError as exc:
        # Two admins saving the same name at once: the unique index decides, we name the field.
        message = str(exc.orig)
        if "uq_schedules_name" in message or "schedules.name" in message:
            raise Conflict("a schedule with this name already exists", field="name") from None
        raise


def _stored_layers(layers: Sequence[LayerIn]) -> list[dict[str, object]]:
    return [layer.model_dump(mode="json", by_alias=True) for layer in layers]


def layers_of(schedule: Schedule) -> list[LayerIn]:
    return [LayerIn.model_validate(raw) for raw in schedule.layers]


# --- overrides ------------------------------------------------------------------------------


async def add_override(
    session: AsyncSession,
    *,
    schedule_id: str,
    data: OverrideCreate,
    now: datetime,
    actor: str | None = None,
) -> ScheduleOverride:
    schedule = await get(session, schedule_id)
    if data.ends_at <= now:
        raise ValidationFailed("the override would already be over", field="ends_at")
    wanted = {data.staff_id} | ({data.replaces_staff_id} if data.replaces_staff_id else set())
    known = await staff_service.find_many(session, wanted)
    for field, staff_id in (
        ("staff_id", data.staff_id),
        ("replaces_staff_id", data.replaces_staff_id),
    ):
        if staff_id is not None and staff_id not in known:
            raise ValidationFailed(f"no staff member with id {staff_id!r}", field=field)
    override = ScheduleOverride(
        schedule_id=schedule.id,
        kind=data.kind,
        staff_id=data.staff_id,
        replaces_staff_id=data.replaces_staff_id,
        starts_at=data.starts_at,
        ends_at=data.ends_at,
        created_at=now,
    )
    session.add(override)
    await session.flush()
    replaced = data.replaces_staff_id
    instead = f" instead of staff member {replaced}" if replaced else ""
    _changed(
        session,
        EventType.OVERRIDE_CREATED,
        schedule.id,
        f"override {override.id}: {data.kind} staff member {data.staff_id}{instead} from "
        f"{data.starts_at.isoformat()} to {data.ends_at.isoformat()}",
        now,
        actor,
        override_id=override.id,
    )
    return override


async def list_overrides(
    session: AsyncSession, *, schedule_id: str, now: datetime
) -> Sequence[ScheduleOverride]:
    """The schedule's overrides that are not over yet (current and future), by start."""
    schedule = await get(session, schedule_id)
    return (
        await session.scalars(
            select(ScheduleOverride)
            .where(ScheduleOverride.schedule_id == schedule.id, ScheduleOverride.ends_at > now)
            .order_by(ScheduleOverride.starts_at, ScheduleOverride.created_at, ScheduleOverride.id)
        )
    ).all()


async def delete_override(
    session: AsyncSession,
    *,
    schedule_id: str,
    override_id: str,
    now: datetime,
    actor: str | None = None,
) -> None:
    schedule = await get(session, schedule_id)
    override = (
        await session.scalar(
            select(ScheduleOverride).where(
                ScheduleOverride.id == override_id, ScheduleOverride.schedule_id == schedule.id
            )
        )
        if well_formed(override_id)
        else None
    )
    if override is None:
        raise NotFound("no such override of this schedule", field="override_id")
    await session.delete(override)
    await session.flush()
    _changed(
        session,
        EventType.OVERRIDE_DELETED,
        schedule.id,
        f"override {override_id} deleted",
        now,
        actor,
        override_id=override_id,
    )


def _changed(
    session: AsyncSession,
    type_: str,
    schedule_id: str,
    what: str,
    now: datetime,
    actor: str | None,
    **data: str,
) -> None:
    """An admin change to a schedule, for the audit log (ids only: names are the admins' text)."""
    audit.record(
        session,
        at=now,
        type=type_,
        actor=actor,
        detail=f"schedule {schedule_id}: {what}",
        data={"schedule_id": schedule_id, **data},
    )


# --- who is on call -------------------------------------------------------------------------


def rules_of(schedule: Schedule, overrides: Sequence[ScheduleOverride] = ()) -> oncall.Rules:
    return oncall.rules(
        schedule.time_zone,
        layers_of(schedule),
        [
            oncall.Override(o.kind, o.staff_id, o.replaces_staff_id, o.starts_at, o.ends_at)
            for o in overrides
            if o.schedule_id == schedule.id
        ],
    )


async def overrides_between(
    session: AsyncSession, schedule_ids: Collection[str], start: datetime, end: datetime
) -> Sequence[ScheduleOverride]:
    """Overrides of these schedules in force at some moment of [start, end]."""
    if not schedule_ids:
        return []
    return (
        await session.scalars(
            select(ScheduleOverride)
            .where(
                ScheduleOverride.schedule_id.in_(list(schedule_ids)),
                ScheduleOverride.starts_at <= end,
                ScheduleOverride.ends_at > start,
            )
            .order_by(ScheduleOverride.starts_at, ScheduleOverride.created_at, ScheduleOverride.id)
        )
    ).all()


async def on_call(
    session: AsyncSession, schedule_ids: Collection[str], at: datetime
) -> dict[str, list[str]]:
    """For each of `schedule_ids`, the staff ids on call at `at`, in order (unknown id: []).

    Two queries at most: the schedules, then their overrides in force at `at`.
    """
    result: dict[str, list[str]] = {sid: [] for sid in schedule_ids}
    wanted = [sid for sid in result if well_formed(sid)]
    if not wanted:
        return result
    schedules = (await session.scalars(select(Schedule).where(Schedule.id.in_(wanted)))).all()
    overrides = await overrides_between(session, [s.id for s in schedules], at, at)
    for schedule in schedules:
        result[schedule.id] = oncall.who(rules_of(schedule, overrides), at)
    return result


@dataclass(frozen=True)
class OnCallNow:
    schedule: Schedule
    staff: list[Staff]
    until: datetime | None


async def who_is_on_call(
    session: AsyncSession,
    *,
    at: datetime,
    schedule_ref: str | None = None,
    horizon: timedelta = oncall.HORIZON,
) -> list[OnCallNow]:
    """Every schedule (or the one `schedule_ref` names, by id or name) with who is on call at
    `at` and until when, looking at most `horizon` ahead."""
    if schedule_ref is None:
        schedules: Sequence[Schedule] = await list_all(session)
    else:
        found = await find(session, schedule_ref)
        if found is None:
            raise NotFound("no schedule with this id or name", field="schedule")
        schedules = [found]
    overrides = await overrides_between(session, [s.id for s in schedules], at, at + horizon)
    answers = []
    for schedule in schedules:
        rules = rules_of(schedule, overrides)
        answers.append((schedule, oncall.who(rules, at), oncall.until(rules, at, horizon)))
    staff = await staff_service.find_many(session, {s for _, ids, _ in answers for s in ids})
    return [
        OnCallNow(schedule, [staff[s] for s in ids if s in staff], ends)
        for schedule, ids, ends in answers
    ]
