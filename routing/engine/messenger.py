"""Sends due texts that are not pages (receipts, "Anna calls you now", verification codes): claim
them (pending → sending, with a lease), commit, call the provider under a hard deadline, then
record the outcome in a new transaction fenced by the claim. The dispatcher's pattern, for the
`outbound_messages` outbox.

Outcomes: sent; a temporary error is retried with backoff (`routing.notify.delivery`); a permanent
one fails the text. A timeout, an unknown outcome, or a lease that ran out while `sending` makes
the text `unknown`, and it is never sent again: a second receipt is worse than a missing one.

A text to a customer passes the pumping guard (`routing.pumping`) first, in a transaction of its
own: a blocked text fails without reaching a provider.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ScalarSelect, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from providers.base import (
    Channel,
    OutboundText,
    OutcomeUnknownError,
    PermanentProviderError,
    SendResult,
    TemporaryProviderError,
)
from providers.registry import ProviderRegistry, UnsupportedChannel
from routing.clock import Clock
from routing.engine.claim import claim, lost_sends
from routing.notify import delivery, outbox
from routing.notify.models import OutboundMessage
from routing.pumping import service as pumping
from routing.pumping.rules import Policy

log = logging.getLogger(__name__)


class Messenger:
    name = "messenger"

    def __init__(
        self,
        registry: ProviderRegistry,
        clock: Clock,
        *,
        lease_seconds: float = 15,
        send_timeout: float = 8,
        batch: int = 50,
        pumping: Policy | None = None,
    ) -> None:
        assert send_timeout < lease_seconds, "a live send must never outlast its lease"
        self.registry = registry
        self.clock = clock
        self.lease = timedelta(seconds=lease_seconds)
        self.send_timeout = send_timeout
        self.batch = batch
        self.pumping = pumping or Policy()

    def due(self) -> Sequence[ScalarSelect[Any]]:
        return [
            select(func.min(OutboundMessage.due_at))
            .where(OutboundMessage.state == "pending")
            .scalar_subquery(),
            select(func.min(OutboundMessage.lease_until))
            .where(OutboundMessage.state == "sending")
            .scalar_subquery(),
        ]

    async def run_once(self, db: async_sessionmaker[AsyncSession], now: datetime) -> int:
        expired = await self._expire_stale(db, now)
        async with db.begin() as session:
            rows = await claim(
                session,
                OutboundMessage,
                where=[OutboundMessage.state == "pending", OutboundMessage.due_at <= now],
                order_by=OutboundMessage.due_at,
                values={
                    "state": "sending",
                    "lease_until": now + self.lease,
                    "tries": OutboundMessage.tries + 1,
                },
                returning=[
                    OutboundMessage.channel,
                    OutboundMessage.to,
                    OutboundMessage.body,
                    OutboundMessage.language,
                    OutboundMessage.report_id,
                    OutboundMessage.staff_id,
                    OutboundMessage.kind,
                ],
                limit=self.batch,
            )
        claimed = [
            (
                row.fence,
                _customer_text(row.kind, row.channel, row.staff_id),
                row.report_id,
                OutboundText(
                    message_id=row.id,
                    channel=Channel(row.channel),
                    to=row.to,
                    body=row.body,
                    language=row.language,
                ),
            )
            for row in rows
        ]
        if claimed:
            await asyncio.gather(*(self._send_and_record(db, *c) for c in claimed))
        return expired + len(claimed)

    async def _send_and_record(
        self,
        db: async_sessionmaker[AsyncSession],
        fence: int,
        customer_text: str | None,
        report_id: str | None,
        text: OutboundText,
    ) -> None:
        if customer_text and await self._blocked(db, fence, customer_text, report_id, text):
            return
        outcome: SendResult | Exception
        try:
            sender = self.registry.text_sender_for(text.channel)
            outcome = await asyncio.wait_for(sender.send_text(text), self.send_timeout)
        except UnsupportedChannel as exc:
            outcome = PermanentProviderError(str(exc))
        except TimeoutError:
            outcome = OutcomeUnknownError(f"no answer within {self.send_timeout:g} s")
        except (TemporaryProviderError, PermanentProviderError, OutcomeUnknownError) as exc:
            outcome = exc
        now = self.clock.now()
        async with db.begin() as session:
            await self._record(session, text.message_id, fence, outcome, now)

    async def _blocked(
        self,
        db: async_sessionmaker[AsyncSession],
        fence: int,
        what: str,
        report_id: str | None,
        text: OutboundText,
    ) -> bool:
        """The pumping guard's word on a customer text; a blocked one fails here."""
        now = self.clock.now()
        async with db.begin() as session:
            block = await pumping.check(
                session,
                self.pumping,
                to=text.to,
                channel=text.channel,
                now=now,
                what=what,
                report_id=report_id,
            )
            if block is not None:
                await delivery.record_blocked(
                    session, message_id=text.message_id, fence=fence, reason=block.reason, now=now
                )
        return block is not None

    async def _record(
        self,
        session: AsyncSession,
        message_id: int,
        fence: int,
        outcome: SendResult | Exception,
        now: datetime,
    ) -> None:
        if isinstance(outcome, SendResult):
            await delivery.record_sent(
                session, message_id=message_id, fence=fence, result=outcome, now=now
            )
        elif isinstance(outcome, TemporaryProviderError | PermanentProviderError):
            await delivery.record_failure(
                session,
                message_id=message_id,
                fence=fence,
                detail=outcome.detail,
                now=now,
                temporary=isinstance(outcome, TemporaryProviderError),
                retry_after=getattr(outcome, "retry_after", None),
            )
        else:
            assert isinstance(outcome, OutcomeUnknownError)
            await delivery.record_unknown(
                session, message_id=message_id, fence=fence, detail=str(outcome), now=now
            )

    async def _expire_stale(self, db: async_sessionmaker[AsyncSession], now: datetime) -> int:
        """Texts still `sending` past their lease: their worker died mid-send. The text may have
        gone out, so it becomes `unknown`, never pending again."""
        async with db.begin() as session:
            stale = await lost_sends(session, OutboundMessage, now=now, limit=self.batch)
            for row in stale:
                await delivery.record_unknown(
                    session,
                    message_id=row.id,
                    fence=row.fence,
                    detail="worker lost during send",
                    now=now,
                )
        if stale:
            log.warning("%d text(s) lost their sender mid-send; not sent again", len(stale))
        return len(stale)


def _customer_text(kind: str, channel: str, staff_id: str | None) -> str | None:
    """ "the receipt SMS to the customer" for a text to a customer (the guard's `what`), else
    None."""
    if not outbox.to_customer(kind=kind, staff_id=staff_id):
        return None
    return f"the {kind} {'call' if channel == outbox.VOICE else 'SMS'} to the customer"
