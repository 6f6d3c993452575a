"""Ack links: a page's one-time "I take it" link, for SMS and chat pages.

The token is random (256 bits) and only its SHA-256 is stored. It is bound to one page (so to
one report and one staff member), expires, and works once. Opening it (GET) changes nothing: link
scanners in mail and SMS apps open links; only the Accept button (POST) accepts.

A bundled SMS carries one link, made for its carrier page: it takes the bundle's open report
closest to its deadline (`bundle.pages_to_accept`).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from routing.errors import NotFound, RoutingError
from routing.page.models import AckLink

LINK_LIFETIME = timedelta(minutes=30)
# An accept link in a text as the dispatcher writes it: `<public base>/ack/<token>`.
IN_TEXT = re.compile(r"/ack/([A-Za-z0-9_-]{20,100})")


class LinkExpired(RoutingError):
    code = "link_expired"


class LinkUsed(RoutingError):
    code = "link_used"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def hashes_in(text: str) -> set[str]:
    """The stored form (SHA-256) of every accept-link token in `text`, e.g. a sent SMS's body."""
    return {_hash(token) for token in IN_TEXT.findall(text)}


async def create(session: AsyncSession, *, page_id: int, now: datetime) -> str:
    """A new link token for `page_id` (returned once; only its hash is kept)."""
    token = secrets.token_urlsafe(32)
    session.add(
        AckLink(
            token_hash=_hash(token), page_id=page_id, expires_at=now + LINK_LIFETIME, created_at=now
        )
    )
    await session.flush()
    return token


@dataclass(frozen=True, slots=True)
class LinkView:
    page_id: int
    expires_at: datetime
    used_at: datetime | None


async def look(session: AsyncSession, *, token: str) -> LinkView:
    """What a link points at, without using it."""
    link = await session.get(AckLink, _hash(token)) if 20 <= len(token) <= 100 else None
    if link is None:
        raise NotFound("this link is not known", field="token")
    return LinkView(link.page_id, link.expires_at, link.used_at)


async def use(session: AsyncSession, *, token: str, now: datetime) -> int:
    """Use the link once; returns its page id. Expired → LinkExpired; used → LinkUsed."""
    view = await look(session, token=token)
    used = await session.execute(
        update(AckLink)
        .where(
            AckLink.token_hash == _hash(token), AckLink.used_at.is_(None), AckLink.expires_at > now
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if used.rowcount == 1:  # type: ignore[attr-defined]
        return view.page_id
    if view.used_at is not None:
        raise LinkUsed("this link was already used")
    raise LinkExpired("this link has expired")
