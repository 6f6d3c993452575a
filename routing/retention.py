"""Retention: a customer's personal data goes once their case is old; the verdict stays.

An engine module that runs once a day (its `heartbeats` row holds when next). A report resolved
more than `days` ago, or never resolved and received more than `unresolved_days` ago, is erased:

- on the report: the phone number (and its lookup hash), the description and customer_ref;
- its customer texts (outbox rows: numbers, bodies with the colleague's name), its SOS-line call
  records, its bridge calls and its status-page links are deleted.

What the promise is measured on stays: the report row with its times, verdict, category, channel
and contacts (`/v1/sla` reads the same figures before and after), and its timeline. Audit events
are append-only and never touched here: they must not hold personal data in the first place.

Texts with no report (staff verification codes, operator alerts), SOS-line calls that never
became a report, and phone checks are deleted `days` after they were made.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ScalarSelect, and_, delete, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from routing.bridge.models import BridgeCall
from routing.engine.models import Heartbeat, next_run
from routing.inbound.models import SosCall
from routing.notify.models import OutboundMessage, PhoneVerification
from routing.report.models import Report, StatusToken

log = logging.getLogger(__name__)

NAME = "retention"
# The key of the retention job's advisory lock: "sos-rete" as a 64-bit number.
LOCK_KEY = int.from_bytes(b"sos-rete", "big")


class Retention:
    name = NAME

    def __init__(
        self,
        *,
        days: int = 90,
        unresolved_days: int = 365,
        interval_seconds: float = 86400,
        batch: int = 200,
    ) -> None:
        self.keep = timedelta(days=days)
        self.keep_unresolved = timedelta(days=unresolved_days)
        self.interval = timedelta(seconds=interval_seconds)
        self.batch = batch

    def due(self) -> Sequence[ScalarSelect[Any]]:
        return [next_run(NAME)]

    async def run_once(self, db: async_sessionmaker[AsyncSession], now: datetime) -> int:
        """Erase everything past its time, a batch of reports per transaction; returns how many
        reports were erased."""
        async with db.begin() as session:
            if not await self._claim(session, now):
                return 0
            others = await erase_unlinked(session, before=now - self.keep)
        erased = 0
        while True:
            async with db.begin() as session:
                done = await erase_reports(
                    session,
                    resolved_before=now - self.keep,
                    received_before=now - self.keep_unresolved,
                    now=now,
                    batch=self.batch,
                )
            erased += done
            if done < self.batch:
                break
        async with db.begin() as session:
            row = await session.get(Heartbeat, NAME, populate_existing=True)
            if row is not None:
                row.beat_at, row.detail = now, {"reports_erased": erased, **others}
        if erased or any(others.values()):
            log.info("retention: erased %d reports' personal data, deleted %s", erased, others)
        return erased

    async def _claim(self, session: AsyncSession, now: datetime) -> bool:
        """Take today's run: move the due row one interval on (one engine at a time)."""
        if session.get_bind().dialect.name == "postgresql":
            locked = text("SELECT pg_try_advisory_xact_lock(:key)")
            if not await session.scalar(locked, {"key": LOCK_KEY}):
                return False
        row = await session.get(Heartbeat, NAME, populate_existing=True)
        if row is None:
            session.add(Heartbeat(name=NAME, due_at=now + self.interval, detail={}))
            return True
        if row.due_at > now:
            return False
        row.due_at = now + self.interval
        return True


async def erase_reports(
    session: AsyncSession,
    *,
    resolved_before: datetime,
    received_before: datetime,
    now: datetime,
    batch: int,
) -> int:
    """Erase the personal data of up to `batch` reports resolved before `resolved_before`, or
    never resolved and received before `received_before`. Returns how many."""
    due = or_(
        Report.resolved_at < resolved_before,
        and_(Report.resolved_at.is_(None), Report.received_at < received_before),
    )
    ids = list(
        await session.scalars(
            select(Report.id)
            # resolved_at >= received_at: the first bound lets the partial index find them.
            .where(
                Report.erased_at.is_(None),
                Report.received_at < max(resolved_before, received_before),
                due,
            )
            .order_by(Report.received_at)
            .limit(batch)
        )
    )
    if not ids:
        return 0
    for model in (OutboundMessage, SosCall, BridgeCall, StatusToken):
        await session.execute(delete(model).where(model.report_id.in_(ids)))
    await session.execute(
        update(Report)
        .where(Report.id.in_(ids))
        .values(
            callback_phone="",
            callback_phone_hash=None,
            description=None,
            customer_ref=None,
            erased_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    return len(ids)


async def erase_unlinked(session: AsyncSession, *, before: datetime) -> dict[str, int]:
    """Delete personal data older than `before` that belongs to no report: texts to staff and
    operators, SOS-line calls that never became a report, phone checks."""
    deleted = {}
    for name, statement in (
        (
            "texts",
            delete(OutboundMessage).where(
                OutboundMessage.report_id.is_(None), OutboundMessage.created_at < before
            ),
        ),
        ("calls", delete(SosCall).where(SosCall.report_id.is_(None), SosCall.arrived_at < before)),
        ("phone_checks", delete(PhoneVerification).where(PhoneVerification.expires_at < before)),
    ):
        result = await session.execute(statement)
        deleted[name] = int(result.rowcount)  # type: ignore[attr-defined]
    return deleted
