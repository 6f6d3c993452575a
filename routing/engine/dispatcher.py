"""Sends due pages: claim them (pending → sending, with a lease), commit, call the provider under a
hard deadline, then record the outcome in a new transaction fenced by the claim.

A page whose lease ran out while `sending` is never simply re-queued: its worker may have reached
the provider before it died. It becomes `unknown` and goes to the reconciler.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ScalarSelect, func, select
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
from routing.page import links
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
        link_base: str | None = None,
    ) -> None:
        """`link_base`: the public URL that SMS and chat pages' accept links start with."""
        assert send_timeout < lease_seconds, "a live send must never outlast its lease"
        self.registry = registry
        self.clock = clock
        self.lease = timedelta(seconds=lease_seconds)
        self.send_timeout = send_timeout
        self.reconcile_after = timedelta(seconds=reconcile_after)
        self.batch = batch
        self.link_base = link_base.rstrip("/") if link_base else None

    def due(self) -> Sequence[ScalarSelect[Any]]:
        return [
            select(func.min(Page.due_at)).where(Page.state == "pending").scalar_subquery(),
            select(func.min(Page.lease_until)).where(Page.state == "sending").scalar_subquery(),
        ]

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
            claimed = await self._outbound(session, {row.id: row.fence for row in rows}, now)
        if claimed:
            await asyncio.gather(*(self._send_and_record(db, c) for c in claimed))
        return expired + len(claimed)

    async def _outbound(
        self, session: AsyncSession, fences: dict[int, int], now: datetime
    ) -> list[_Claimed]:
        """What each claimed page says and where it goes, in one query."""
        if not fences:
            return []
        rows = (
            await session.execute(
                select(
                    Page.id,
                    Page.channel,
                    Staff.name,
                    Staff.phone,
                    Staff.chat_id,
                    Staff.languages,
                    Report.reference,
                    Report.category,
                )
                .join(Staff, Staff.id == Page.staff_id)
                .join(Report, Report.id == Page.report_id)
                .where(Page.id.in_(fences))
                .order_by(Page.id)
            )
        ).all()
        claimed = []
        for row in rows:
            channel = Channel(row.channel)
            to = row.chat_id if channel == Channel.CHAT else row.phone
            if not to:
                claimed.append(_Claimed(row.id, fences[row.id], None, f"no {channel} address"))
                continue
            language = staff_language(row.languages)
            page = OutboundPage(
                page_id=row.id,
                channel=channel,
                to=to,
                staff_name=row.name,
                language=language,
                reference=row.reference,
                category=row.category,
                text=page_text(language=language, category=row.category, reference=row.reference)
                + await self._link(session, row.id, channel, now),
            )
            claimed.append(_Claimed(row.id, fences[row.id], page))
        return claimed

    async def _link(
        self, session: AsyncSession, page_id: int, channel: Channel, now: datetime
    ) -> str:
        """SMS and chat pages carry a one-time accept link (a call has its keypress)."""
        if self.link_base is None or channel == Channel.VOICE:
            return ""
        token = await links.create(session, page_id=page_id, now=now)
        return f" {self.link_base}/ack/{token}"

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
