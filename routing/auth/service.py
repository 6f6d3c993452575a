"""Bearer tokens: created once and shown once; stored only as a SHA-256 hash."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from routing.audit import service as audit
from routing.audit.service import EventType
from routing.auth.models import ApiToken, StaffSession
from routing.errors import ValidationFailed
from routing.staff.models import Staff
from routing.types import Role

PREFIX = "sos_"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the token's id, its role, and the staff member it speaks for, if any."""

    token_id: str
    role: Role
    staff_id: str | None


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def create(
    session: AsyncSession,
    *,
    role: Role,
    now: datetime,
    staff_id: str | None = None,
    name: str = "",
    expires_at: datetime | None = None,
    actor: str | None = None,
) -> tuple[str, ApiToken]:
    """A new token; returns its secret (shown once) and its row. `actor`: who created it, for
    the audit log (`cli` from the command line)."""
    if role == Role.STAFF and staff_id is None:
        raise ValidationFailed(
            "a staff token needs the staff member it belongs to", field="staff_id"
        )
    if staff_id is not None and await session.get(Staff, staff_id) is None:
        raise ValidationFailed(f"no staff member with id {staff_id!r}", field="staff_id")
    secret = PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        token_hash=hash_token(secret),
        role=str(role),
        staff_id=staff_id,
        name=name,
        created_at=now,
        expires_at=expires_at,
    )
    session.add(token)
    await session.flush()
    audit.record(
        session,
        at=now,
        type=EventType.TOKEN_CREATED,
        actor=actor,
        detail=f"{role} token {token.id} created"
        + (f" for staff member {staff_id}" if staff_id else ""),
        data={"token_id": token.id, "role": str(role), "staff_id": staff_id},
    )
    return secret, token


async def authenticate(session: AsyncSession, *, secret: str, now: datetime) -> Principal | None:
    """The principal for `secret`, or None. Lookup is by hash, so timing reveals nothing useful."""
    token = await session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(secret)))
    if token is None or token.revoked_at is not None:
        return None
    if token.expires_at is not None and token.expires_at <= now:
        return None
    return Principal(token_id=token.id, role=Role(token.role), staff_id=token.staff_id)


# Console sessions end after this long without a request, and after this long in any case.
SESSION_IDLE = timedelta(minutes=30)
SESSION_MAX = timedelta(hours=12)


async def start_session(session: AsyncSession, *, principal: Principal, now: datetime) -> str:
    """A new console session for a staff or admin token; returns the cookie secret (once)."""
    secret = secrets.token_urlsafe(32)
    session.add(
        StaffSession(
            id_hash=hash_token(secret),
            token_id=principal.token_id,
            staff_id=principal.staff_id,
            role=str(principal.role),
            created_at=now,
            last_seen_at=now,
        )
    )
    await session.flush()
    return secret


async def resume_session(session: AsyncSession, *, secret: str, now: datetime) -> Principal | None:
    """The session's principal, if it is live (not ended, not idle, not too old)."""
    found = await session.get(StaffSession, hash_token(secret)) if secret else None
    if found is None or found.ended_at is not None:
        return None
    if now - found.last_seen_at > SESSION_IDLE or now - found.created_at > SESSION_MAX:
        return None
    token = await session.get(ApiToken, found.token_id)
    if token is None or token.revoked_at is not None:
        return None
    found.last_seen_at = now
    return Principal(token_id=found.token_id, role=Role(found.role), staff_id=found.staff_id)


async def end_session(session: AsyncSession, *, secret: str, now: datetime) -> None:
    found = await session.get(StaffSession, hash_token(secret)) if secret else None
    if found is not None and found.ended_at is None:
        found.ended_at = now
