"""Importing a rota file: check all of it, then store all of it, in the caller's transaction.

Staff are matched to stored staff by phone number and updated (the fields the file gives), else
created; schedules are matched by name and their zone and layers replaced, else created; chains
are always created (the newest chain of a category serves new reports). Nothing is stored when any
part is wrong: `Rejected` carries every problem, and the caller's transaction rolls back.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from routing.audit import service as audit
from routing.audit.service import EventType
from routing.chain import service as chain_service
from routing.chain.schemas import ChainCreate
from routing.errors import RoutingError
from routing.rota import rotafile
from routing.rota import service as rota_service
from routing.rota.models import Schedule
from routing.rota.rotafile import Document, Path, Plan, Problem
from routing.rota.schemas import ScheduleCreate
from routing.staff import service as staff_service
from routing.staff.models import Staff
from routing.staff.schemas import StaffCreate


class Rejected(Exception):
    """The file was not imported; `problems` says why, each with its line."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"{len(problems)} problem(s)")
        self.problems = problems


@dataclass(frozen=True)
class Summary:
    staff_new: int = 0
    staff_updated: int = 0
    schedules_new: int = 0
    schedules_updated: int = 0
    chains: int = 0

    def line(self) -> str:
        """`imported 3 staff (2 new, 1 updated), 1 schedule (1 new, 0 updated), 1 chain`."""
        schedules = self.schedules_new + self.schedules_updated
        return (
            f"imported {self.staff_new + self.staff_updated} staff "
            f"({self.staff_new} new, {self.staff_updated} updated), "
            f"{schedules} schedule{'' if schedules == 1 else 's'} "
            f"({self.schedules_new} new, {self.schedules_updated} updated), "
            f"{self.chains} chain{'' if self.chains == 1 else 's'}"
        )


async def import_text(
    session: AsyncSession,
    *,
    text: str,
    default_time_zone: str,
    now: datetime,
    actor: str | None = None,
) -> Summary:
    """Check the rota file `text` against what is stored, then store it; raise `Rejected`.
    `actor`: who imported it, for the audit log."""
    document, problems = rotafile.parse(text)
    if document is None:
        raise Rejected(problems)
    plan, more = rotafile.check(document, await stored(session))
    problems += more
    if problems:
        raise Rejected(sorted(problems, key=lambda p: p.line))
    summary = await apply(
        session,
        document=document,
        plan=plan,
        default_time_zone=default_time_zone,
        now=now,
        actor=actor,
    )
    audit.record(
        session,
        at=now,
        type=EventType.ROTA_IMPORTED,
        actor=actor,
        detail=f"rota imported: {summary.line()}",
        data=asdict(summary),
    )
    return summary


async def stored(session: AsyncSession) -> rotafile.Stored:
    staff = (await session.execute(select(Staff.id, Staff.name, Staff.phone))).all()
    schedules = (await session.execute(select(Schedule.name, Schedule.id))).all()
    return rotafile.Stored(
        staff=[rotafile.StoredStaff(id=i, name=n, phone=p) for i, n, p in staff],
        schedules={str(name): str(schedule_id) for name, schedule_id in schedules},
    )


async def apply(
    session: AsyncSession,
    *,
    document: Document,
    plan: Plan,
    default_time_zone: str,
    now: datetime,
    actor: str | None = None,
) -> Summary:
    staff_ids: dict[str, str] = {}
    schedule_ids: dict[str, str] = {}
    counts = dict.fromkeys(("staff_new", "staff_updated", "schedules_new", "schedules_updated"), 0)
    for person in plan.staff:
        if person.stored_id is None:
            created = await staff_service.create(session, data=person.data, now=now, actor=actor)
            staff_ids[person.key] = created.id
            counts["staff_new"] += 1
        else:
            await _update_staff(session, person.stored_id, person.data, now, actor)
            counts["staff_updated"] += 1
    await session.flush()
    for entry in plan.schedules:
        data = ScheduleCreate.model_validate(rotafile.with_ids(entry.data, staff_ids, {}))
        with _at(document, entry.path):
            if entry.stored_id is None:
                schedule = await rota_service.create(
                    session, data=data, default_time_zone=default_time_zone, now=now, actor=actor
                )
                counts["schedules_new"] += 1
            else:
                schedule = await rota_service.update(
                    session,
                    schedule_id=entry.stored_id,
                    data=data,
                    default_time_zone=default_time_zone,
                    now=now,
                    actor=actor,
                )
                counts["schedules_updated"] += 1
        schedule_ids[entry.key] = schedule.id
    for chain in plan.chains:
        body = ChainCreate.model_validate(rotafile.with_ids(chain.data, staff_ids, schedule_ids))
        with _at(document, chain.path):
            await chain_service.create(session, data=body, now=now, actor=actor)
    return Summary(**counts, chains=len(plan.chains))


async def _update_staff(
    session: AsyncSession, staff_id: str, data: StaffCreate, now: datetime, actor: str | None
) -> None:
    """The fields the file gives replace the stored ones; the phone is what matched."""
    staff = await staff_service.get(session, staff_id)
    given = data.model_fields_set
    staff.name = data.name
    if "languages" in given:
        staff.languages = [str(lang) for lang in data.languages]
    if "skills" in given:
        staff.skills = list(data.skills)
    if "chat_id" in given:
        staff.chat_id = data.chat_id
    fields = sorted({"name"} | (given & {"languages", "skills", "chat_id"}))
    audit.record(
        session,
        at=now,
        type=EventType.STAFF_CHANGED,
        actor=actor,
        detail=f"staff member {staff.id}: {', '.join(fields)} set by a rota import",
        data={"staff_id": staff.id, "fields": fields},
    )


@contextlib.contextmanager
def _at(document: Document, path: Path) -> Iterator[None]:
    """Turn a domain error while storing the entry at `path` into a `Rejected` with its line."""
    try:
        yield
    except RoutingError as exc:
        parts = exc.field.split(".") if exc.field else []
        where: Path = (*path, *(int(p) if p.isdigit() else p for p in parts))
        problem = Problem(document.line(where), rotafile.dotted(where), exc.message)
        raise Rejected([problem]) from exc
