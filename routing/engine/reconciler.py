"""Settles pages whose outcome is unknown (a send timeout, a worker lost mid-send) by asking the
provider, never by a blind resend:

- the provider has the page → it counts as sent;
- the provider confirms it never got it → the same page row is sent again (unless it is no longer
  wanted, its report accepted meanwhile: then it is canceled, and a bundle's riders go out anew);
- a page whose id we never learned (its send timed out, its worker died before recording the
  answer) cannot be asked about by id: when its sender can list its sends, it is looked up by
  address and time instead (`routing.engine.lookup`). Found → sent, with its id; not listed once
  the provider has had time to list it → sent again; before that, asked again (not given up);
- nobody can tell (no status capability, or no answer for `give_up_seconds`) → the page is given up
  as failed, flagged as a possible duplicate, which moves the report on to its next step.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from sqlalchemy import Row, ScalarSelect, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from providers.base import Channel, ProviderError, SendResult, SentFinder, StatusChecker
from providers.registry import ProviderRegistry, UnsupportedChannel
from routing.engine import lookup
from routing.engine.claim import claim
from routing.page import service as page_service
from routing.page.models import Page

log = logging.getLogger(__name__)


class _Verdict(Enum):
    FOUND = "found"
    ABSENT = "absent"
    NO_ANSWER = "no_answer"
    CANNOT_CHECK = "cannot_check"
    WAIT = "wait"  # not found yet, too early to call it absent: ask again, do not give up


class Reconciler:
    name = "reconciler"

    def __init__(
        self,
        registry: ProviderRegistry,
        *,
        retry_seconds: float = 30,
        give_up_seconds: float = 300,
        batch: int = 50,
    ) -> None:
        self.registry = registry
        self.retry = timedelta(seconds=retry_seconds)
        self.give_up = timedelta(seconds=give_up_seconds)
        self.batch = batch

    def due(self) -> Sequence[ScalarSelect[Any]]:
        return [select(func.min(Page.due_at)).where(Page.state == "unknown").scalar_subquery()]

    async def run_once(self, db: async_sessionmaker[AsyncSession], now: datetime) -> int:
        async with db.begin() as session:
            # The claim pushes `due_at` forward: that is this module's lease.
            rows = await claim(
                session,
                Page,
                where=[Page.state == "unknown", Page.due_at <= now],
                order_by=Page.due_at,
                values={"due_at": now + self.retry},
                returning=[
                    Page.report_id,
                    Page.attempt_no,
                    Page.channel,
                    Page.external_id,
                    Page.created_at,
                    Page.dispatched_at,
                ],
                limit=self.batch,
            )
        for row in rows:
            verdict, external_id = await self._ask(db, row, now)
            async with db.begin() as session:
                await self._settle(session, row, verdict, external_id, now)
        return len(rows)

    async def _ask(
        self, db: async_sessionmaker[AsyncSession], row: Row[Any], now: datetime
    ) -> tuple[_Verdict, str | None]:
        try:
            sender = self.registry.sender_for(Channel(row.channel))
        except UnsupportedChannel:
            return _Verdict.CANNOT_CHECK, None
        if not isinstance(sender, StatusChecker):
            return _Verdict.CANNOT_CHECK, None
        try:
            found = await sender.status(row.id, row.external_id)
        except ProviderError as exc:
            if row.external_id is None and row.dispatched_at and isinstance(sender, SentFinder):
                return await self._look_up(db, sender, row, now)
            log.warning("page %s: reconcile failed: %s", row.id, exc.detail)
            return _Verdict.NO_ANSWER, None
        if found is None:
            return _Verdict.ABSENT, None
        return _Verdict.FOUND, found.external_id

    async def _look_up(
        self, db: async_sessionmaker[AsyncSession], finder: SentFinder, row: Row[Any], now: datetime
    ) -> tuple[_Verdict, str | None]:
        answer = await lookup.look_up(
            db, finder, page_id=row.id, dispatched_at=row.dispatched_at, now=now, retry=self.retry
        )
        level = logging.WARNING if answer.verdict is lookup.Verdict.UNSURE else logging.INFO
        log.log(
            level,
            "page %s without an id: %s (%s)",
            row.id,
            answer.verdict.value,
            answer.detail,
            extra={"report_id": row.report_id},
        )
        verdicts = {
            lookup.Verdict.FOUND: _Verdict.FOUND,
            lookup.Verdict.ABSENT: _Verdict.ABSENT,
            lookup.Verdict.WAIT: _Verdict.WAIT,
            lookup.Verdict.UNSURE: _Verdict.NO_ANSWER,
        }
        return verdicts[answer.verdict], answer.external_id

    async def _settle(
        self,
        session: AsyncSession,
        row: Row[Any],
        verdict: _Verdict,
        external_id: str | None,
        now: datetime,
    ) -> None:
        if verdict is _Verdict.FOUND:
            await page_service.record_sent(
                session,
                page_id=row.id,
                fence=row.fence,
                from_state="unknown",
                now=now,
                result=SendResult(provider="reconciled", external_id=external_id),
            )
        elif verdict is _Verdict.ABSENT:
            # Send it again, unless it is no longer wanted (its report was accepted meanwhile).
            again = await page_service.still_wanted(
                session, report_id=row.report_id, attempt_no=row.attempt_no
            )
            await session.execute(
                update(Page)
                .where(Page.id == row.id, Page.fence == row.fence, Page.state == "unknown")
                .values(
                    {"state": "pending", "due_at": now}
                    if again
                    else {"state": "canceled", "finished_at": now}
                )
                .execution_options(synchronize_session=False)
            )
        elif verdict is _Verdict.WAIT:
            return  # the claim moved `due_at` on: asked again then
        elif verdict is _Verdict.CANNOT_CHECK or now - row.created_at >= self.give_up:
            await page_service.record_failure(
                session,
                page_id=row.id,
                fence=row.fence,
                now=now,
                temporary=False,
                from_state="unknown",
                detail="outcome unknown and not confirmable; moving on (possible duplicate)",
            )
