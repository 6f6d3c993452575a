"""Chain use cases: create, list, and pick the chain a new report follows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from routing.audit import service as audit
from routing.audit.service import EventType
from routing.chain.models import Chain
from routing.chain.schemas import ChainCreate
from routing.errors import ValidationFailed
from routing.rota.models import Schedule
from routing.sql import Raw
from routing.staff import service as staff_service


async def create(
    session: AsyncSession, *, data: ChainCreate, now: datetime, actor: str | None = None
) -> Chain:
    """Store a chain. Staff ids must exist; schedules may be named by id or name and are stored
    by id (renaming a schedule keeps its chains). `actor`: who did it, for the audit log."""
    groups: list[tuple[str, list[str], list[str]]] = [
        (f"steps.{i}", step.targets, step.schedules) for i, step in enumerate(data.steps)
    ]
    if data.last_resort:
        groups.append(("last_resort", data.last_resort.targets, []))
    if data.all_hands:
        groups.append(("all_hands", data.all_hands.targets, data.all_hands.schedules))
    known = await staff_service.find_many(session, {t for _, ts, _ in groups for t in ts})
    schedules = await _schedule_ids(session, {s for _, _, ss in groups for s in ss})
    for where, targets, refs in groups:
        for j, target in enumerate(targets):
            if target not in known:
                raise ValidationFailed(
                    f"no staff member with id {target!r}", field=f"{where}.targets.{j}"
                )
        for j, ref in enumerate(refs):
            if ref not in schedules:
                raise ValidationFailed(
                    f"no schedule with id or name {ref!r}", field=f"{where}.schedules.{j}"
                )
    # The chain created last serves new reports. Two chains stamped in the same instant (a coarse
    # or fake clock) would tie, so a new chain is always stamped after the latest one.
    latest = await session.scalar(select(func.max(Chain.created_at)))
    if latest is not None and latest >= now:
        now = latest + timedelta(microseconds=1)
    dumped = data.model_dump(mode="json")
    for step in [*dumped["steps"], *([dumped["all_hands"]] if dumped["all_hands"] else [])]:
        step["schedules"] = list(dict.fromkeys(schedules[ref] for ref in step["schedules"]))
    chain = Chain(
        name=data.name,
        categories=dumped["categories"],
        steps=dumped["steps"],
        repeat=data.repeat,
        last_resort=dumped["last_resort"],
        all_hands=dumped["all_hands"],
        created_at=now,
    )
    session.add(chain)
    await session.flush()
    audit.record(
        session,
        at=now,
        type=EventType.CHAIN_CREATED,
        actor=actor,
        detail=f"chain {chain.id} created: {len(chain.steps)} step(s), serving "
        f"{', '.join(chain.categories) or 'every category'}",
        data={"chain_id": chain.id, "categories": chain.categories},
    )
    return chain


async def list_all(session: AsyncSession) -> Sequence[Chain]:
    return (await session.scalars(select(Chain).order_by(Chain.created_at, Chain.id))).all()


class ChainRow(NamedTuple):
    """The columns of a chain a new report keeps (read on the driver connection)."""

    id: str
    name: str
    steps: list[dict[str, Any]]
    repeat: int
    last_resort: dict[str, Any] | None
    all_hands: dict[str, Any] | None
    categories: list[str]


async def snapshot_for(session: AsyncSession, category: str) -> dict[str, Any] | None:
    """The chain a new `category` report follows, as the report keeps it (None: no chain). Every
    intake asks, so this reads on the driver connection."""
    raw = await Raw.of(session)
    rows = await raw.fetch(
        "SELECT id, name, steps, repeat, last_resort, all_hands, categories "
        "FROM chains ORDER BY created_at DESC, id"
    )
    chains = [
        ChainRow(r[0], r[1], raw.json(r[2]), r[3], raw.json(r[4]), raw.json(r[5]), raw.json(r[6]))
        for r in rows
    ]
    chosen = chain_for(chains, category)
    return snapshot(chosen) if chosen else None


ChainT = TypeVar("ChainT", Chain, ChainRow)


def chain_for(newest_first: Sequence[ChainT], category: str) -> ChainT | None:
    """Pure: which of `newest_first` a new `category` report follows: the newest chain serving
    `category`, else the newest default chain (no categories)."""
    specific = next((c for c in newest_first if category in c.categories), None)
    return specific or next((c for c in newest_first if not c.categories), None)


def snapshot(chain: Chain | ChainRow) -> dict[str, Any]:
    return {
        "id": chain.id,
        "name": chain.name,
        "steps": chain.steps,
        "repeat": chain.repeat,
        "last_resort": chain.last_resort,
        "all_hands": chain.all_hands,
    }


async def _schedule_ids(session: AsyncSession, refs: set[str]) -> dict[str, str]:
    """Each given schedule id or name → its id (refs that match nothing are left out)."""
    if not refs:
        return {}
    rows = await session.execute(
        select(Schedule.id, Schedule.name).where(
            or_(Schedule.id.in_(refs), Schedule.name.in_(refs))
        )
    )
    found: dict[str, str] = {}
    for schedule_id, name in rows:
        found[schedule_id] = schedule_id
        found.setdefault(name, schedule_id)
    return found
