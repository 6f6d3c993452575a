"""Chain use cases: create, list, and pick the chain a new report follows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from routing.chain.models import Chain
from routing.chain.schemas import ChainCreate
from routing.errors import ValidationFailed
from routing.staff import service as staff_service


async def create(session: AsyncSession, *, data: ChainCreate, now: datetime) -> Chain:
    wanted = {t for step in data.steps for t in step.targets}
    if data.last_resort:
        wanted |= set(data.last_resort.targets)
    known = await staff_service.find_many(session, wanted)
    for i, step in enumerate(data.steps):
        for j, target in enumerate(step.targets):
            if target not in known:
                raise ValidationFailed(
                    f"no staff member with id {target!r}", field=f"steps.{i}.targets.{j}"
                )
    if data.last_resort:
        for j, target in enumerate(data.last_resort.targets):
            if target not in known:
                raise ValidationFailed(
                    f"no staff member with id {target!r}", field=f"last_resort.targets.{j}"
                )
    # The chain created last serves new reports. Two chains stamped in the same instant (a coarse
    # or fake clock) would tie, so a new chain is always stamped after the latest one.
    latest = await session.scalar(select(func.max(Chain.created_at)))
    if latest is not None and latest >= now:
        now = latest + timedelta(microseconds=1)
    dumped = data.model_dump(mode="json")
    chain = Chain(
        name=data.name,
        categories=dumped["categories"],
        steps=dumped["steps"],
        repeat=data.repeat,
        last_resort=dumped["last_resort"],
        created_at=now,
    )
    session.add(chain)
    await session.flush()
    return chain


async def list_all(session: AsyncSession) -> Sequence[Chain]:
    return (await session.scalars(select(Chain).order_by(Chain.created_at, Chain.id))).all()


async def select_for(session: AsyncSession, category: str) -> Chain | None:
    """The newest chain serving `category`, else the newest default chain (no categories)."""
    chains = (
        await session.scalars(select(Chain).order_by(Chain.created_at.desc(), Chain.id))
    ).all()
    specific = next((c for c in chains if category in c.categories), None)
    return specific or next((c for c in chains if not c.categories), None)


def snapshot(chain: Chain) -> dict[str, Any]:
    return {
        "id": chain.id,
        "name": chain.name,
        "steps": chain.steps,
        "repeat": chain.repeat,
        "last_resort": chain.last_resort,
    }
