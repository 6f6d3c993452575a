"""The pumping guard with its state: `check` is called once per customer text or call, just
before the provider call, in a transaction of its own; it counts what goes out, opens breakers
and records every block. Velocity and breakers live in the database (`customer_sends`,
`send_breakers`), so every process shares them.

Counts are read without a lock: sends decided at the same moment in several processes may pass a
limit by as many as decide together. A breaker is what stops a run, not an exact count.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, case, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from routing.audit import service as audit
from routing.errors import NotFound
from routing.notify import outbox, texts
from routing.phone import mask_phone
from routing.pumping import rules
from routing.pumping.models import CustomerSend, SendBlock, SendBreaker
from routing.pumping.rules import GLOBAL, NUMBER, PREFIX, Block, Policy

log = logging.getLogger(__name__)

BLOCKED, OPENED, RESET = "send_blocked", "send_breaker_opened", "send_breaker_reset"
# Broadest first: the reason a block names when several scopes are over their limit.
SCOPES = (GLOBAL, PREFIX, NUMBER)
SCOPE_WORDS = {NUMBER: "this number", PREFIX: "this number's range", GLOBAL: "all customers"}


def _minutes(span: timedelta) -> str:
    return f"{span.total_seconds() / 60:g} min"


async def check(
    session: AsyncSession,
    policy: Policy,
    *,
    to: str,
    channel: str,
    now: datetime,
    what: str,
    report_id: str | None = None,
) -> Block | None:
    """May `what` ("the receipt SMS to the customer") go to `to` by `channel` now? None: yes,
    and it is counted. Otherwise the block, recorded as a `send_blocked` audit event; a limit
    reached opens its breaker and alerts the operators."""
    block = rules.screen(to, channel=channel, regions=policy.regions)
    if block is None:
        block = await _velocity(session, policy, to, now)
    if block is None:
        return None
    detail, masked = f"did not send {what}: {block.detail}", mask_phone(to)[:20]
    data = {"reason": block.reason, "channel": channel, "to": masked}
    audit.record(session, at=now, type=BLOCKED, report_id=report_id, detail=detail, data=data)
    session.add(SendBlock(at=now, report_id=report_id, detail=detail[:300], **data))
    log.warning(
        "pumping guard blocked %s (report %s): %s",
        what,
        report_id,
        block.reason,
        extra={"report_id": report_id},
    )
    return block


async def screened(
    session: AsyncSession,
    policy: Policy,
    text: str | None,
    *,
    to: str,
    channel: str,
    now: datetime,
    what: str,
) -> str | None:
    """`text` when it may go out to `to` (see `check`), else None: for a reply given inline."""
    if text is None:
        return None
    blocked = await check(session, policy, to=to, channel=channel, now=now, what=what)
    return None if blocked else text


async def _velocity(session: AsyncSession, policy: Policy, to: str, now: datetime) -> Block | None:
    keys = {scope: rules.key(policy.secret, scope, _value(scope, to)) for scope in SCOPES}
    breaker = await session.scalar(
        select(SendBreaker)
        .where(
            is_open(now),
            or_(*(and_(SendBreaker.scope == s, SendBreaker.key == k) for s, k in keys.items())),
        )
        .order_by(SendBreaker.id)
        .limit(1)
    )
    if breaker is not None:
        until = f"{breaker.open_until:%H:%M} UTC"
        detail = f"customer sends to {SCOPE_WORDS[breaker.scope]} are stopped until {until}"
        return Block(f"{breaker.scope}_breaker", detail)
    since = now - policy.window
    await session.execute(
        delete(CustomerSend)
        .where(CustomerSend.at <= since)
        .execution_options(synchronize_session=False)
    )
    row = (
        await session.execute(
            select(
                func.count(),
                func.coalesce(func.sum(case((CustomerSend.prefix_key == keys[PREFIX], 1))), 0),
                func.coalesce(func.sum(case((CustomerSend.number_key == keys[NUMBER], 1))), 0),
            ).where(CustomerSend.at > since)
        )
    ).one()
    counts = dict(zip(SCOPES, (int(n) for n in row), strict=True))
    over = [scope for scope in SCOPES if counts[scope] >= policy.limit(scope)]
    for scope in over:
        await _trip(session, policy, scope, keys[scope], to, counts[scope], now)
    if over:
        scope = over[0]
        sent = f"{counts[scope]} sends in {_minutes(policy.window)}"
        return Block(f"{scope}_breaker", f"{SCOPE_WORDS[scope]} reached its limit ({sent})")
    session.add(CustomerSend(at=now, number_key=keys[NUMBER], prefix_key=keys[PREFIX]))
    return None


def _value(scope: str, to: str) -> str:
    return rules.prefix_of(to) if scope == PREFIX else to


async def _trip(
    session: AsyncSession, policy: Policy, scope: str, key: str, to: str, sent: int, now: datetime
) -> None:
    """Open the breaker of `scope` (its count starts afresh), and alert the operators unless one
    of this scope opened within the mute time."""
    reason = f"{sent} customer sends in {_minutes(policy.window)} (limit {policy.limit(scope)})"
    breaker = SendBreaker(
        scope=scope,
        key=key,
        label=rules.label(scope, to),
        reason=reason,
        opened_at=now,
        open_until=now + policy.cooldown,
    )
    session.add(breaker)
    await session.flush()
    await _forget(session, scope, key)
    audit.record(
        session,
        at=now,
        type=OPENED,
        detail=f"customer texts and calls to {SCOPE_WORDS[scope]} stopped: {reason}",
        data={"breaker_id": breaker.id, "scope": scope},
    )
    log.error("pumping breaker %s opened (%s): %s", breaker.id, scope, reason)
    recent = await session.scalar(
        select(func.count())
        .select_from(SendBreaker)
        .where(
            SendBreaker.scope == scope,
            SendBreaker.opened_at > now - policy.mute,
            SendBreaker.id != breaker.id,
        )
    )
    if not recent:
        body = texts.pumping_alert(
            language=policy.language,
            scope=scope,
            sent=sent,
            limit=policy.limit(scope),
            window=policy.window,
            until=breaker.open_until,
        )
        await outbox.alert_operators(
            session, policy.operators, language=policy.language, body=body, now=now
        )


async def _forget(session: AsyncSession, scope: str, key: str) -> None:
    """A breaker that opens starts its scope's count afresh: once it closes (cool-down or an
    admin), the scope has its whole limit again instead of tripping at the next send."""
    forget = delete(CustomerSend)
    if scope == NUMBER:
        forget = forget.where(CustomerSend.number_key == key)
    elif scope == PREFIX:
        forget = forget.where(CustomerSend.prefix_key == key)
    await session.execute(forget.execution_options(synchronize_session=False))


# --- what admins see and do ----------------------------------------------------------------------


def is_open(now: datetime) -> ColumnElement[bool]:
    """A breaker that stops sends at `now`: no admin closed it and its cool-down runs."""
    return and_(SendBreaker.closed_at.is_(None), SendBreaker.open_until > now)


async def open_breakers(session: AsyncSession, now: datetime) -> Sequence[SendBreaker]:
    rows = await session.scalars(select(SendBreaker).where(is_open(now)).order_by(SendBreaker.id))
    return rows.all()


async def open_by_scope(session: AsyncSession, now: datetime) -> dict[str, int]:
    """How many breakers are open at `now`, by scope; every scope is named, 0 when none is open
    (three values at most: it is safe as a metric label)."""
    rows = await session.execute(
        select(SendBreaker.scope, func.count()).where(is_open(now)).group_by(SendBreaker.scope)
    )
    counts = dict.fromkeys(SCOPES, 0)
    for scope, count in rows:
        counts[scope] = count
    return counts


async def recent_blocks(session: AsyncSession, *, limit: int = 100) -> Sequence[SendBlock]:
    """The latest blocked sends, newest first."""
    rows = await session.scalars(select(SendBlock).order_by(SendBlock.id.desc()).limit(limit))
    return rows.all()


async def reset(
    session: AsyncSession, *, breaker_id: int, actor: str, now: datetime
) -> SendBreaker:
    """Close a breaker before its cool-down ends. Closing a closed breaker changes nothing."""
    breaker = await session.get(SendBreaker, breaker_id, with_for_update=True)
    if breaker is None:
        raise NotFound("no such breaker", field="breaker_id")
    if breaker.closed_at is not None or breaker.open_until <= now:
        return breaker
    breaker.closed_at, breaker.closed_by = now, actor
    audit.record(
        session,
        at=now,
        type=RESET,
        actor=actor,
        detail=f"an admin reset the breaker for {SCOPE_WORDS[breaker.scope]}",
        data={"breaker_id": breaker.id, "scope": breaker.scope},
    )
    log.warning("pumping breaker %s reset by an admin", breaker.id)
    return breaker
