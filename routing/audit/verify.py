"""Checking the audit log against its hash chain (`sos-router audit verify`).

The seals are walked in chain order, recomputing each hash from the previous one and the event's
current row, and the first link that does not hold is named: a seal missing from the sequence
(deleted), a seal whose previous hash is not its predecessor's (inserted, removed or reordered), a
sealed event that is gone (deleted) or whose row no longer gives its seal's hash (edited). Then
the events without a seal are counted: events the sealer has not reached yet are normal; an event
behind the chain's newest sealed event that the sealer is not waiting for was inserted afterwards.

What the chain cannot show on its own is a consistent rewrite of the whole tail by someone who can
write every row: compare the head (`chain_no` and hash, printed on success) with one recorded
elsewhere earlier, e.g. in the operators' ticket system.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from routing.audit.chain import GENESIS, link
from routing.audit.models import AuditEvent, AuditSeal
from routing.engine.sealer import open_gaps


@dataclass(frozen=True, slots=True)
class Break:
    """The first link that does not hold: which seal (None: an event outside the chain), which
    event, and what is wrong."""

    chain_no: int | None
    event_id: int | None
    problem: str

    def __str__(self) -> str:
        where = [f"seal {self.chain_no}"] if self.chain_no is not None else []
        where += [f"event {self.event_id}"] if self.event_id is not None else []
        return f"{', '.join(where)}: {self.problem}"


@dataclass(frozen=True, slots=True)
class Verdict:
    sealed: int  # seals checked and found intact, from the first one
    head_hash: str  # the hash of the last intact seal (64 zeros: none)
    unsealed: int  # events without a seal
    broken: Break | None

    @property
    def ok(self) -> bool:
        return self.broken is None

    def lines(self) -> list[str]:
        waiting = f"{self.unsealed} event(s) not sealed yet"
        if self.broken is not None:
            return [
                f"audit log BROKEN at {self.broken}",
                f"{self.sealed} seal(s) intact before it; {waiting}",
            ]
        return [
            f"audit log intact: {self.sealed} event(s) sealed; {waiting}",
            f"head: seal {self.sealed} {self.head_hash}",
        ]


async def verify(session: AsyncSession, *, batch: int = 1000) -> Verdict:
    # Read before the gaps: an id the sealer skips after this is above it (see `_stray`).
    watermark = int(await session.scalar(select(func.max(AuditSeal.event_id))) or 0)
    gaps = await open_gaps(session)
    expected, prev = 1, GENESIS
    broken: Break | None = None
    while broken is None:
        rows = (
            await session.execute(
                select(AuditSeal, AuditEvent)
                .outerjoin(AuditEvent, AuditEvent.id == AuditSeal.event_id)
                .where(AuditSeal.chain_no >= expected)
                .order_by(AuditSeal.chain_no)
                .limit(batch)
            )
        ).all()
        if not rows:
            break
        for seal, event in rows:
            broken = _check(seal, event, expected, prev)
            if broken is not None:
                break
            expected, prev = expected + 1, seal.hash
        session.expunge_all()  # a long log is read in batches, never held whole
    if broken is None:
        broken = await _stray(session, watermark, gaps)
    unsealed = await session.scalar(
        select(func.count())
        .select_from(AuditEvent)
        .where(~exists().where(AuditSeal.event_id == AuditEvent.id))
    )
    return Verdict(expected - 1, prev, int(unsealed or 0), broken)


def _check(seal: AuditSeal, event: AuditEvent | None, expected: int, prev: str) -> Break | None:
    if seal.chain_no != expected:
        return Break(
            expected,
            None,
            f"missing: the chain jumps from seal {expected - 1} to seal {seal.chain_no} "
            "(seals were deleted)",
        )
    if seal.prev_hash != prev:
        return Break(
            seal.chain_no,
            seal.event_id,
            f"does not follow seal {expected - 1} (its previous hash differs): seals were "
            "inserted, removed, reordered or edited",
        )
    if event is None:
        return Break(seal.chain_no, seal.event_id, "the sealed event is gone (deleted)")
    if link(prev, event) != seal.hash:
        return Break(
            seal.chain_no,
            seal.event_id,
            "the event no longer matches its seal: it (or the seal) was changed after sealing",
        )
    return None


async def _stray(session: AsyncSession, watermark: int, gaps: set[int]) -> Break | None:
    """An event without a seal behind the newest sealed one, where the sealer is not waiting for
    a late commit: it was inserted after the events around it were sealed."""
    found = await session.scalar(
        select(AuditEvent.id)
        .where(
            AuditEvent.id < watermark,
            AuditEvent.id.not_in(gaps),
            ~exists().where(AuditSeal.event_id == AuditEvent.id),
        )
        .order_by(AuditEvent.id)
        .limit(1)
    )
    if found is None:
        return None
    return Break(
        None,
        found,
        "not sealed, although later events are: inserted behind the chain (or committed long "
        "after its id was taken)",
    )
