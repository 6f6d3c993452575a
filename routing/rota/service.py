"""Placeholder until the rota module lands: nobody is on call in any schedule."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession


async def on_call(
    session: AsyncSession, schedule_ids: Collection[str], at: datetime
) -> dict[str, list[str]]:
    del session, at
    return {i: [] for i in schedule_ids}
