"""Bearer tokens and console sessions.

A token is created once and shown once; only the SHA-256 of its secret is stored, and it is found
by that hash. Looking a hash up in an index leaks, at most, how much of a *hash* matched, which
says nothing useful about the secret (finding a secret whose hash starts the same way is as hard
as guessing it), so the lookup needs no constant-time compare; every compare of a secret itself
(CSRF values) uses `hmac.compare_digest`. Nothing here caches: every request reads the token row,
so a revoked or expired token is refused at once by every process.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from routing.audit import service as audit
from routing.audit.service import EventType
from routing.auth.models import ApiToken, StaffSession
from routing.errors import NotFound, ValidationFailed
from routing.staff.models import Staff
from routing.types import Role

PREFIX = "sos_"


class AuthEvent:
    """Audit event types of this module (never with a token's secret in them)."""

    # A wrong, expired or revoked token (API or console sign-in); `actor` is the client address.
    FAILED = "auth_failed"
    # A valid token whose role may not do this (e.g. a staff token on an admin route).
    DENIED = "access_denied"
    TOKEN_REVOKED = "token_revoked"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the token's id, its role, and the staff member it speaks for, if any."""

    token_id: str
    role: Role
    staff_id: str | None


@dataclass(frozen=True, slots=True)
class Refused:
    """Why a secret was refused: "unknown", "expired" or "revoked" (with the token's id)."""

    reason: str
    token_id: str | None = None


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


async def check(session: AsyncSession, *, secret: str, now: datetime) -> Principal | Refused:
    """The principal for `secret`, or why not."""
    token = await session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(secret)))
    refused = _refusal(token, now)
    if refused is not None:
        return refused
    assert token is not None
    return Principal(token_id=token.id, role=Role(token.role), staff_id=token.staff_id)


def _refusal(token: ApiToken | None, now: datetime) -> Refused | None:
    if token is None:
        return Refused("unknown")
    if token.revoked_at is not None:
        return Refused("revoked", token.id)
    if token.expires_at is not None and token.expires_at <= now:
        return Refused("expired", token.id)
    return None


async def authenticate(session: AsyncSession, *, secret: str, now: datetime) -> Principal | None:
    found = await check(session, secret=secret, now=now)
    return found if isinstance(found, Principal) else None


def record_refused(
    session: AsyncSession, *, at: datetime, refused: Refused, client: str, where: str
) -> None:
    """An audit event for a refused secret; it names the client and the token id, never the
    secret."""
    audit.record(
        session,
        at=at,
        type=AuthEvent.FAILED,
        actor=client[:64],
        detail=f"{where}: token refused ({refused.reason})",
        data={"reason": refused.reason, "token_id": refused.token_id, "where": where},
    )


def record_denied(
    session: AsyncSession, *, at: datetime, principal: Principal, action: str, allowed: str
) -> None:
    """An audit event for a valid token used where its role may not go."""
    audit.record(
        session,
        at=at,
        type=AuthEvent.DENIED,
        actor=principal.token_id,
        detail=f"{principal.role} token refused: {action[:300]} needs {allowed}",
        data={"role": str(principal.role), "staff_id": principal.staff_id, "action": action[:300]},
    )


async def list_all(session: AsyncSession) -> list[ApiToken]:
    return list(await session.scalars(select(ApiToken).order_by(ApiToken.created_at)))


async def revoke(
    session: AsyncSession, *, now: datetime, token_id: str | None = None, secret: str | None = None
) -> ApiToken:
    """Revoke a token by its id or by its secret, and end its console sessions. Revoking twice
    keeps the first time."""
    if (token_id is None) == (secret is None):
        raise ValidationFailed("give the token's id or its secret", field="token_id")
    if token_id is not None:
        where = ApiToken.id == token_id
    else:
        where = ApiToken.token_hash == hash_token(secret or "")
    token = await session.scalar(select(ApiToken).where(where))
    if token is None:
        raise NotFound("no such token", field="token_id" if token_id is not None else "secret")
    if token.revoked_at is None:
        token.revoked_at = now
        audit.record(
            session,
            at=now,
            type=AuthEvent.TOKEN_REVOKED,
            actor="cli",
            detail=f"{token.role} token {token.id} revoked",
            data={"token_id": token.id, "role": token.role, "staff_id": token.staff_id},
        )
    await session.execute(
        update(StaffSession)
        .where(StaffSession.token_id == token.id, StaffSession.ended_at.is_(None))
        .values(ended_at=now)
    )
    return token


# --- console sessions --------------------------------------------------------------------------


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


async def resume_session(
    session: AsyncSession, *, secret: str, now: datetime, idle: timedelta, max_age: timedelta
) -> Principal | None:
    """The session's principal, if it is live: not ended, used within `idle`, started within
    `max_age`, and its token neither revoked nor expired. A dead session is ended for good."""
    found = await session.get(StaffSession, hash_token(secret)) if secret else None
    if found is None or found.ended_at is not None:
        return None
    token = await session.get(ApiToken, found.token_id)
    if (
        now - found.last_seen_at > idle
        or now - found.created_at > max_age
        or _refusal(token, now) is not None
    ):
        found.ended_at = now
        return None
    found.last_seen_at = now
    return Principal(token_id=found.token_id, role=Role(found.role), staff_id=found.staff_id)


async def end_session(session: AsyncSession, *, secret: str, now: datetime) -> None:
    found = await session.get(StaffSession, hash_token(secret)) if secret else None
    if found is not None and found.ended_at is None:
        found.ended_at = now
