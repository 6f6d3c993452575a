"""Ends calls that must not go on ringing: someone else accepted, or voicemail picked up."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ScalarSelect, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from providers.base import Canceller, Channel, ProviderError
from providers.registry import ProviderRegistry, UnsupportedChannel
from routing.page.models import Page

log = logging.getLogger(__name__)


class Hangup:
    name = "hangup"

    def __init__(self, registry: ProviderRegistry, *, batch: int = 50) -> None:
        self.registry = registry
        self.batch = batch

    def due(self) -> Sequence[ScalarSelect[Any]]:
        return [
            select(func.min(Page.hangup_due_at))
            .where(Page.hangup_due_at.is_not(None), Page.hung_up_at.is_(None))
            .scalar_subquery()
        ]

    async def run_once(self, db: async_sessionmaker[AsyncSession], now: datetime) -> int:
        async with db.begin() as session:
            due = (
                await session.execute(
                    select(Page.id, Page.external_id)
                    .where(Page.hangup_due_at <= now, Page.hung_up_at.is_(None))
                    .limit(self.batch)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if due:
                # Claimed by marking: a call is ended at most once, even with several workers.
                await session.execute(
                    update(Page)
                    .where(Page.id.in_([row.id for row in due]))
                    .values(hung_up_at=now)
                    .execution_options(synchronize_session=False)
                )
        canceller = self._canceller()
        for row in due:
            if canceller is None or row.external_id is None:
                continue
            try:
                await canceller.cancel(row.external_id)
            except ProviderError as exc:
                # Best effort: an unanswered call ends by itself after its ring timeout.
                log.warning("page %s: could not end the call: %s", row.id, exc.detail)
        return len(due)

    def _canceller(self) -> Canceller | None:
        try:
            sender = self.registry.sender_for(Channel.VOICE)
        except UnsupportedChannel:
            return None
        return sender if isinstance(sender, Canceller) else None
