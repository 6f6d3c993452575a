"""Key rotation (`sos-router keys rotate`): rewrite every encrypted value under the ring's current
key, encrypt values stored before encryption existed, and make every lookup hash match the
lookup key.

The work is found from the models themselves: every `EncryptedText` column, and every column
whose `info` names the column it is the `lookup_of`. Rows are read in primary-key order, a batch
per transaction, on plain columns (the stored text, not the ORM's decrypted value), and each row
is written only if it still holds what was read (compare-and-set): a row the service changed
meanwhile is left alone (it was written under the current key anyway) and counted. Running it
again does nothing new, so an interrupted rotation is resumed by running it again.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, column, select, table, update
from sqlalchemy.ext.asyncio import AsyncSession

from routing import crypto
from routing.crypto import EncryptedText, KeyRing, UnreadableData
from routing.models import Base


@dataclass
class Counts:
    rows: int = 0
    reencrypted: int = 0  # under an older key before
    encrypted: int = 0  # stored as plaintext before
    hashed: int = 0  # lookup hashes set or corrected
    changed_meanwhile: int = 0  # the service wrote the row between read and write: left alone
    unreadable: int = 0  # a key the ring does not hold, or a damaged value: left alone

    def add(self, other: Counts) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def __str__(self) -> str:
        return ", ".join(
            f"{getattr(self, f.name)} {f.name.replace('_', ' ')}" for f in fields(self)
        )


@dataclass(frozen=True)
class Sealed:
    """A table with personal data: its encrypted columns and, per phone column, its hash column."""

    table: Table
    key: str
    encrypted: tuple[str, ...]
    hashes: dict[str, str]


def sealed_tables() -> list[Sealed]:
    found = []
    for t in Base.metadata.sorted_tables:
        encrypted = tuple(c.name for c in t.columns if isinstance(c.type, EncryptedText))
        if encrypted:
            [key] = [c.name for c in t.primary_key.columns]
            hashes = {c.info["lookup_of"]: c.name for c in t.columns if "lookup_of" in c.info}
            found.append(Sealed(t, key, encrypted, hashes))
    return found


async def rotate_batch(
    session: AsyncSession, sealed: Sealed, *, after: Any, batch: int
) -> tuple[Any, Counts]:
    """Rotate the rows after primary key `after` (None: from the start), at most `batch` of them.
    Returns the last key seen (None when the table is done) and what was done."""
    ring = crypto.ring()
    names = [sealed.key, *sealed.encrypted, *sealed.hashes.values()]
    plain = table(sealed.table.name, *(column(n) for n in names))
    key = plain.c[sealed.key]
    query = select(plain).order_by(key).limit(batch)
    if after is not None:
        query = query.where(key > after)
    rows = (await session.execute(query)).mappings().all()
    counts = Counts(rows=len(rows))
    for row in rows:
        try:
            changes, done = _changes(ring, sealed, row)
        except UnreadableData:
            counts.unreadable += 1
            continue
        if not changes:
            continue
        same: list[ColumnElement[bool]] = [
            plain.c[n] == row[n] if row[n] is not None else plain.c[n].is_(None) for n in changes
        ]
        result = await session.execute(
            update(plain).where(key == row[sealed.key], and_(*same)).values(changes)
        )
        if result.rowcount == 1:  # type: ignore[attr-defined]
            counts.add(done)
        else:
            counts.changed_meanwhile += 1
    return (rows[-1][sealed.key] if len(rows) == batch else None), counts


def _changes(ring: KeyRing, sealed: Sealed, row: Any) -> tuple[dict[str, str | None], Counts]:
    """What to write to `row` (column → value), and what that counts as."""
    changes: dict[str, str | None] = {}
    counts = Counts()
    for name in sealed.encrypted:
        stored = row[name]
        if stored is None:
            continue
        key_id = crypto.key_id_of(stored)
        value = ring.decrypt(stored)
        if key_id != ring.current:
            changes[name] = ring.encrypt(value)
            counts.encrypted += key_id is None
            counts.reencrypted += key_id is not None
        hash_column = sealed.hashes.get(name)
        if hash_column is not None:
            wanted = ring.lookup_hash(value) if value else None
            if row[hash_column] != wanted:
                changes[hash_column] = wanted
                counts.hashed += 1
    return changes, counts
