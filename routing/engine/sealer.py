"""The sealer: appends every new audit event to the hash chain (`routing.audit.chain`).

Recording an event stays a plain insert that takes no lock, so intake and paging never queue
behind one chain head. The sealer, a singleton like the auditor (a transaction-level advisory lock
on PostgreSQL), takes the events that have no seal yet in id order and appends one `audit_seals`
row each; nothing is ever updated. It runs at most every `interval` while there is work.

Ids come from a sequence, so a transaction can commit an event with a lower id after a higher one
was sealed. The sealer remembers every id it skipped below the events it sealed ("gaps", in its
`heartbeats` row) and looks for them again on each run: an event that commits late is sealed by a
later run. A gap nobody filled within `settle` was a rolled-back transaction and is forgotten; an
event appearing there later is one `sos-router audit verify` reports as inserted behind the chain.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, ScalarSelect, case, exists, func, null, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from routing.audit.chain import GENESIS, link
from routing.audit.models import AuditEvent, AuditSeal
from routing.engine.auditor import singleton
from routing.engine.models import Heartbeat

log = logging.getLogger(__name__)

NAME = "sealer"
# The key of the sealer's advisory lock: "sos-seal" as a 64-bit number.
LOCK_KEY = int.from_bytes(b"sos-seal", "big")
NEVER = datetime(1970, 1, 1, tzinfo=UTC)
# At most this many skipped ids are remembered (the newest).
MAX_GAPS = 1000


def _watermark() -> ScalarSelect[Any]:
    """The highest sealed event id (0 before the first seal): one index lookup."""
    return select(func.coalesce(func.max(AuditSeal.event_id), 0)).scalar_subquery()


class Sealer:
    name = NAME

    def __init__(
        self, *, interval_seconds: float = 1.0, settle_seconds: float = 300, batch: int = 5000
    ) -> None:
        """`settle_seconds`: how long a skipped id is looked for again (longer than any
        transaction that records an event lasts)."""
        self.interval = timedelta(seconds=interval_seconds)
        self.settle = timedelta(seconds=settle_seconds)
        self.batch = batch
        # When this process's sealer may run again: at most once per interval.
        self.next_at = NEVER

    def due(self) -> Sequence[ScalarSelect[Any]]:
        """Whether there are new events beyond the watermark (an index range), and when skipped
        ids are rechecked."""
        new_events = exists().where(AuditEvent.id > _watermark())
        return [
            select(case((new_events, 1), else_=null())).scalar_subquery(),
            select(Heartbeat.due_at).where(Heartbeat.name == NAME).scalar_subquery(),
        ]

    def next_due(self, values: Sequence[Any]) -> datetime | None:
        """Due for new events or the recheck, but never before this process's next turn."""
        new_events, recheck = values
        due = [self.next_at] if new_events else []
        if recheck is not None:
            due.append(max(recheck, self.next_at))
        return min(due, default=None)

    async def run_once(self, db: async_sessionmaker[AsyncSession], now: datetime) -> int:
        if now < self.next_at:
            return 0
        self.next_at = now + self.interval
        async with db.begin() as session:
            if not await singleton(session, LOCK_KEY):
                return 0  # another engine is sealing
            sealed = await seal(
                session, now=now, settle=self.settle, recheck=self.interval, batch=self.batch
            )
        if sealed == self.batch:
            self.next_at = now  # a backlog: go on at once
        return sealed


async def seal(
    session: AsyncSession,
    *,
    now: datetime,
    settle: timedelta,
    recheck: timedelta = timedelta(seconds=1),
    batch: int = 5000,
) -> int:
    """Append a seal for each unsealed event (at most `batch`), in id order; returns how many.
    The caller holds the sealer's lock. Skipped ids are looked for again after `recheck`."""
    head = (
        await session.execute(
            select(AuditSeal.chain_no, AuditSeal.hash).order_by(AuditSeal.chain_no.desc()).limit(1)
        )
    ).first()
    chain_no, prev = (head.chain_no, head.hash) if head else (0, GENESIS)
    watermark = int(await session.scalar(select(_watermark())) or 0)
    state = await session.get(Heartbeat, NAME, populate_existing=True)
    if state is None:
        state = Heartbeat(name=NAME, due_at=now, detail={})
        session.add(state)
    gaps = {
        int(i): since
        for i, since in state.detail.get("gaps", {}).items()
        if now - datetime.fromisoformat(since) < settle
    }
    waiting: ColumnElement[bool] = AuditEvent.id > watermark
    if gaps:
        waiting = or_(waiting, AuditEvent.id.in_(gaps))
    events = list(
        await session.scalars(
            select(AuditEvent)
            .where(waiting, ~exists().where(AuditSeal.event_id == AuditEvent.id))
            .order_by(AuditEvent.id)
            .limit(batch)
        )
    )
    for event in events:
        chain_no += 1
        hash_ = link(prev, event)
        session.add(
            AuditSeal(
                chain_no=chain_no, event_id=event.id, sealed_at=now, prev_hash=prev, hash=hash_
            )
        )
        prev = hash_
        gaps.pop(event.id, None)
    top = max((e.id for e in events), default=watermark)
    sealed = {e.id for e in events}
    for skipped in range(max(watermark + 1, top - MAX_GAPS), top):
        if skipped not in sealed:
            gaps.setdefault(skipped, now.isoformat())
    kept = sorted(gaps)[-MAX_GAPS:]
    state.detail = {"gaps": {str(i): gaps[i] for i in kept}}
    state.beat_at = now
    # Skipped ids are looked for again soon; otherwise only new events wake the sealer.
    state.due_at = now + (recheck if kept else settle)
    if events:
        log.debug("sealed %d audit events up to chain %d", len(events), chain_no)
    return len(events)


async def open_gaps(session: AsyncSession) -> set[int]:
    """The skipped ids the sealer still looks for: events that may yet commit."""
    state = await session.get(Heartbeat, NAME, populate_existing=True)
    return {int(i) for i in state.detail.get("gaps", {})} if state else set()
