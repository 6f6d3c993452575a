"""Sends due pages: claim them (pending → sending, with a lease), commit, call the provider under a
hard deadline, then record the outcome in a new transaction fenced by the claim.

A page whose lease ran out while `sending` is never simply re-queued: its worker may have reached
the provider before it died. It becomes `unknown` and goes to the reconciler.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from providers.base import (
    Channel,
    OutboundPage,
    OutcomeUnknownError,
    PermanentProviderError,
    SendResult,
    TemporaryProviderError,
)
from providers.registry import ProviderRegistry, UnsupportedChannel
from routing.clock import Clock
from routing.engine.claim import claim
from routing.page import service as page_service
from routing.page.messages import page_text, staff_language
from routing.page.models import Page
from routing.report.models import Report
from routing.staff.models import Staff

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Claimed:
    page_id: int
    fence: int
    outbound: OutboundPage | None
    problem: str = ""


class Dispatcher:
    name = "dispatcher"

    def __init__(
        self,
        registry: ProviderRegistry,
        clock: Clock,
        *,
        lease_seconds: float = 15,
        send_timeout: float = 8,
        reconcile_after: float = 30,
        batch: int = 50,
    ) -> None:
        assert send_timeout < lease_seconds, "a live send must never outlast its lease"
        self.registry = registry
        self.clock = clock
        self.lease = timedelta(seconds=lease_seconds)
        self.send_timeout = send_timeout
        self.reconcile_after = timedelta(seconds=reconcile_after)
        self.batch = batch

    async def run_once(self, db: async_sessionmaker[AsyncSession], now: datetime) -> int:
        expired = await self._expire_stale(db, now)
        async with db.begin() as session:
            rows = await claim(
                session,
                Page,
                where=[Page.state == "pending", Page.due_at <= now],
                order_by=Page.due_at,
                values={
                    "state": "sending",
                    "lease_until": now + self.lease,
                    "claimed_at": now,
                    "tries": Page.tries + 1,
                },
                returning=[],
                limit=self.batch,
            )
            claimed = [await self._outbound(session, row.id, row.fence) for row in rows]
        if claimed:
            await asyncio.gather(*(self._send_and_record(db, c) for c in claimed))
        return expired + len(claimed)

    async def _outbound(self, session: AsyncSession, page_id: int, fence: int) -> _Claimed:
        page = await session.get(Page, page_id, populate_existing=True)
        assert page is not None
        staff = await session.get(Staff, page.staff_id)
        report = await session.get(Report, page.report_id)
        assert staff is not None
        assert report is not None
        channel = Channel(page.channel)
        to = staff.chat_id if channel == Channel.CHAT else staff.phone
        if not to:
            return _Claimed(page_id, fence, None, f"no {channel} address")
        language = staff_language(staff.languages)
        return _Claimed(
            page_id,
            fence,
            OutboundPage(
                page_id=page_id,
                channel=channel,
                to=to,
                staff_name=staff.name,
                language=language,
                reference=report.reference,
                category=report.category,
                text=page_text(
                    language=language, category=report.category, reference=report.reference
                ),
            ),
        )

    async def _send_and_record(self, db: async_sessionmaker[AsyncSession], c: _Claimed) -> None:
        outcome: SendResult | Exception
        if c.outbound is None:
            outcome = PermanentProviderError(c.problem)
        else:
            try:
                sender = self.registry.sender_for(c.outbound.channel)
                outcome = await asyncio.wait_for(sender.send(c.outbound), self.send_timeout)
            except UnsupportedChannel as exc:
                outcome = PermanentProviderError(str(exc))
            except TimeoutError:
                outcome = OutcomeUnknownError(f"no answer within {self.send_timeout:g} s")
            except (TemporaryProviderError, PermanentProviderError, OutcomeUnknownError) as exc:
                outcome = exc
        now = self.clock.now()
        async with db.begin() as session:
            await self._record(session, c, outcome, now)

    async def _record(
        self, session: AsyncSession, c: _Claimed, outcome: SendResult | Exception, now: datetime
    ) -> None:
        if isinstance(outcome, SendResult):
            await page_service.record_sent(
                session, page_id=c.page_id, fence=c.fence, result=outcome, now=now
            )
        elif isinstance(outcome, TemporaryProviderError):
            await page_service.record_failure(
                session,
                page_id=c.page_id,
                fence=c.fence,
                detail=outcome.detail,
                now=now,
                temporary=True,
                retry_after=outcome.retry_after,
            )
        elif isinstance(outcome, PermanentProviderError):
            await page_service.record_failure(
                session,
                page_id=c.page_id,
                fence=c.fence,
                detail=outcome.detail,
                now=now,
                temporary=False,
            )
        else:
            assert isinstance(outcome, OutcomeUnknownError)
            await page_service.record_unknown(
                session,
                page_id=c.page_id,
                fence=c.fence,
                detail=str(outcome),
                now=now,
                reconcile_at=now + self.reconcile_after,
            )

    async def _expire_stale(self, db: async_sessionmaker[AsyncSession], now: datetime) -> int:
        """Pages still `sending` past their lease: their worker died mid-send."""
        async with db.begin() as session:
            stale = (
                await session.execute(
                    select(Page.id, Page.fence)
                    .where(Page.state == "sending", Page.lease_until < now)
                    .limit(self.batch)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            for row in stale:
                await page_service.record_unknown(
                    session,
                    page_id=row.id,
                    fence=row.fence,
                    detail="worker lost during send",
                    now=now,
                    reconcile_at=now,
                )
        if stale:
            log.warning("%d page(s) lost their sender mid-send; reconciling", len(stale))
        return len(stale)
