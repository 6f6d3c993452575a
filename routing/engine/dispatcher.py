"""Sends due pages: claim them (pending → sending, with a lease), commit, call the provider under a
hard deadline, then record the outcome in a new transaction fenced by the claim.

Claims take the most urgent reports first (earliest deadline). Before the claim commits, the
per-contact limits decide what goes now (`routing/page/bundle.py`): a call to someone already on
one waits a few seconds, SMS pages over a person's window wait for a free slot, and several SMS
pages to one person go out as one bundled message. Every text passes the content guard
(`routing/guard.py`); what it removes is recorded on the reports, never sent.

A page whose lease ran out while `sending` is never simply re-queued: its worker may have reached
the provider before it died. It becomes `unknown` and goes to the reconciler
(`routing/engine/lost_pages.py`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ScalarSelect, func, select, tuple_, update
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
from routing.audit import service as audit
from routing.audit.service import EventType
from routing.clock import Clock
from routing.engine.engine import observer
from routing.guard import scrub
from routing.page import bundle, links
from routing.page import service as page_service
from routing.page.bundle import PagingLimits, Send
from routing.page.messages import bundle_text, page_text, staff_language
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
        limits: PagingLimits = PagingLimits(1, 5, 900),
        crash_point: Callable[[str], None] = lambda _point: None,
    ) -> None:
        """`link_base`: the public URL that SMS and chat pages' accept links start with;
        `limits`: how many calls and SMS one staff member gets (`routing/page/bundle.py`);
        `crash_point`: called at `after_claim` and `after_send`, where the fault-injection suite
        kills the process (a no-op otherwise)."""
        assert send_timeout < lease_seconds, "a live send must never outlast its lease"
        self.registry = registry
        self.clock = clock
        self.lease = timedelta(seconds=lease_seconds)
        self.send_timeout = send_timeout
        self.reconcile_after = timedelta(seconds=reconcile_after)
        self.batch = batch
        self.link_base = link_base.rstrip("/") if link_base else None
        self.limits = limits
        self.crash_point = crash_point

    def due(self) -> Sequence[ScalarSelect[Any]]:
        return [
            select(func.min(Page.due_at)).where(Page.state == "pending").scalar_subquery(),
            bundle.orphans_due(),
        ]

    async def run_once(self, db: async_sessionmaker[AsyncSession], now: datetime) -> int:
        async with db.begin() as session:
            # Riders whose carrier went back to pending (or was canceled) join this claim again,
            # so a bundle sent anew stays one message.
            released = await bundle.release_orphans(session, now=now)
            looked_at, sends = await bundle.claim_due(
                session,
                now=now,
                limit=self.batch,
                limits=self.limits,
                lease_until=now + self.lease,
            )
            claimed = await self._outbound(session, sends, now)
        if claimed:
            self.crash_point("after_claim")
            claimed = await self._dispatch(db, claimed, now)
            await asyncio.gather(*(self._send_and_record(db, c) for c in claimed))
        return released + looked_at

    @staticmethod
    async def _dispatch(
        db: async_sessionmaker[AsyncSession], claimed: list[_Claimed], now: datetime
    ) -> list[_Claimed]:
        """Mark the claimed pages as going to the provider now, in a commit of their own: if this
        worker dies before that commit, the pages were provably never sent and go out again
        (`routing/engine/lost_pages.py`); after it, their outcome is unknown until the provider
        says. Returns the pages still this worker's to send."""
        async with db.begin() as session:
            mine = set(
                await session.scalars(
                    update(Page)
                    .where(
                        tuple_(Page.id, Page.fence).in_([(c.page_id, c.fence) for c in claimed]),
                        Page.state == "sending",
                        Page.dispatched_at.is_(None),
                    )
                    .values(dispatched_at=now)
                    .returning(Page.id)
                    .execution_options(synchronize_session=False)
                )
            )
        return [c for c in claimed if c.page_id in mine]

    async def _outbound(
        self, session: AsyncSession, sends: Sequence[Send], now: datetime
    ) -> list[_Claimed]:
        """What each message says and where it goes, in one query."""
        if not sends:
            return []
        rows = (
            await session.execute(
                select(
                    Page.id,
                    Page.channel,
                    Page.due_at,
                    Staff.name,
                    Staff.phone,
                    Staff.chat_id,
                    Staff.languages,
                    Report.reference,
                    Report.category,
                )
                .join(Staff, Staff.id == Page.staff_id)
                .join(Report, Report.id == Page.report_id)
                .where(Page.id.in_([send.page_id for send in sends]))
            )
        ).all()
        by_id = {row.id: row for row in rows}
        claimed = []
        for send in sends:
            row = by_id[send.page_id]
            channel = Channel(row.channel)
            to = row.chat_id if channel == Channel.CHAT else row.phone
            if not to:
                claimed.append(_Claimed(row.id, send.fence, None, f"no {channel} address"))
                continue
            observer().page_dispatched(channel, (now - row.due_at).total_seconds())
            language = staff_language(row.languages)
            if send.is_bundle:
                text = bundle_text(language=language, count=len(send.report_ids))
            else:
                text = page_text(language=language, category=row.category, reference=row.reference)
            safe_text, safe_name = scrub(text), scrub(row.name)
            found = tuple(dict.fromkeys(safe_text.found + safe_name.found))
            if found:
                self._blocked(session, send, channel, safe_name.text, found, now)
            page = OutboundPage(
                page_id=row.id,
                channel=channel,
                to=to,
                staff_name=safe_name.text,
                language=language,
                reference=row.reference,
                category=row.category,
                # The link is appended after the guard: it is our own random token, and a
                # token that happened to look like an account number must still work.
                text=safe_text.text + await self._link(session, row.id, channel, now),
            )
            claimed.append(_Claimed(row.id, send.fence, page))
        return claimed

    @staticmethod
    def _blocked(
        session: AsyncSession,
        send: Send,
        channel: Channel,
        staff_name: str,
        found: tuple[str, ...],
        now: datetime,
    ) -> None:
        """The guard removed something from a page: say so on every report it covers (what
        kind, never the removed text itself)."""
        what = ", ".join(found)
        for report_id in send.report_ids:
            audit.record(
                session,
                at=now,
                type=EventType.CONTENT_BLOCKED,
                report_id=report_id,
                detail=f"{page_service.describe(channel, staff_name)}: removed {what} before "
                "sending",
                data={
                    "page_id": send.page_id,
                    "channel": str(channel),
                    "found": list(found),
                    "where": f"a {channel} page",
                },
            )

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
        if isinstance(outcome, SendResult):
            self.crash_point("after_send")
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
