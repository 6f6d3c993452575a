"""Pages that lost their sender: rare, so a module of its own, due only when such a page exists,
and the dispatcher's runs (one per new report at low rates) stay a single claim transaction.

A page still `sending` past its lease: its worker died. One that never reached its dispatch mark
was provably never sent and goes out again now; the others may have reached the provider and
become `unknown`, for the reconciler (never a blind resend).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ScalarSelect, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from routing.engine.claim import lost_sends
from routing.page import service as page_service
from routing.page.models import Page

log = logging.getLogger(__name__)


class LostPages:
    name = "lost_pages"

    def __init__(self, *, batch: int = 50) -> None:
        self.batch = batch

    def due(self) -> Sequence[ScalarSelect[Any]]:
        return [select(func.min(Page.lease_until)).where(Page.state == "sending").scalar_subquery()]

    async def run_once(self, db: async_sessionmaker[AsyncSession], now: datetime) -> int:
        async with db.begin() as session:
            stale = await lost_sends(session, Page, now=now, limit=self.batch)
            dispatched = (
                set(
                    await session.scalars(
                        select(Page.id).where(
                            Page.id.in_([row.id for row in stale]), Page.dispatched_at.is_not(None)
                        )
                    )
                )
                if stale
                else set()
            )
            for row in stale:
                if row.id in dispatched:
                    await page_service.record_unknown(
                        session,
                        page_id=row.id,
                        fence=row.fence,
                        detail="worker lost during send",
                        now=now,
                        reconcile_at=now,
                    )
                else:
                    await page_service.record_unsent(
                        session, page_id=row.id, fence=row.fence, now=now
                    )
        if stale:
            log.warning(
                "%d page(s) lost their sender (%d before the provider call: sent again)",
                len(stale),
                len(stale) - len(dispatched),
            )
        return len(stale)
