"""Recording what became of a queued text: the Messenger's send outcome, and later status
callbacks. Every function runs in a transaction the caller owns.

The Messenger's recordings are fenced: they only count while the text is still `sending` under the
caller's claim. States only move forward (sending/unknown → sent → delivered; failed and canceled
are final), so a duplicate or late callback changes nothing. An `unknown` text is never sent
again: a second receipt is worse than a missing one, and the status page has it anyway.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from providers.base import DeliveryState, SendResult
from routing.audit import service as audit
from routing.audit.service import EventType
from routing.notify import texts
from routing.notify.models import OutboundMessage
from routing.notify.outbox import VERIFICATION
from routing.phone import mask_numbers

MAX_TRIES = 4
RETRY_BACKOFF_SECONDS = (2, 4, 8)

# How far along each live state is; a status callback may only move a text further.
_RANK = {"sending": 1, "unknown": 1, "sent": 2, "delivered": 3}


def describe(message: OutboundMessage) -> str:
    how = "call" if message.channel == "voice" else "SMS"
    who = "staff member" if message.report_id is None else "customer"
    return f"{message.kind} {how} to the {who}"


async def _fenced(session: AsyncSession, message_id: int, fence: int, **values: object) -> bool:
    """Apply `values` only if the text is still `sending` under the caller's claim."""
    result = await session.execute(
        update(OutboundMessage)
        .where(
            OutboundMessage.id == message_id,
            OutboundMessage.fence == fence,
            OutboundMessage.state == "sending",
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined, no-any-return]


async def _load(session: AsyncSession, message_id: int) -> OutboundMessage:
    message = await session.get(OutboundMessage, message_id, populate_existing=True)
    assert message is not None
    return message


def _settled(message: OutboundMessage) -> None:
    """A verification code is kept only while it may still be sent."""
    if message.kind == VERIFICATION:
        message.body = texts.CODE_REMOVED


def _event(
    session: AsyncSession, message: OutboundMessage, type_: str, what: str, now: datetime
) -> None:
    if message.report_id is None:
        return  # verification texts have no report timeline
    audit.record(
        session,
        at=now,
        type=type_,
        report_id=message.report_id,
        detail=mask_numbers(f"{describe(message)}{what}"),  # a provider's message may hold one
        data={"message_id": message.id, "kind": message.kind, "channel": message.channel},
    )


async def record_sent(
    session: AsyncSession, *, message_id: int, fence: int, result: SendResult, now: datetime
) -> None:
    if not await _fenced(
        session,
        message_id,
        fence,
        state="sent",
        provider=result.provider,
        external_id=result.external_id,
        sent_at=now,
        lease_until=None,
    ):
        return
    message = await _load(session, message_id)
    _settled(message)
    if result.state == DeliveryState.FAILED:
        _fail(session, message, result.detail or "not delivered", now)
    elif result.state == DeliveryState.DELIVERED:
        message.state = "delivered"


async def record_failure(
    session: AsyncSession,
    *,
    message_id: int,
    fence: int,
    detail: str,
    now: datetime,
    temporary: bool,
    retry_after: float | None = None,
) -> None:
    """A temporary error is retried with backoff until `MAX_TRIES`; then, or when permanent,
    the text has failed."""
    message = await _load(session, message_id)
    if message.fence != fence or message.state != "sending":
        return
    if temporary and message.tries < MAX_TRIES:
        backoff = retry_after or RETRY_BACKOFF_SECONDS[min(message.tries, 3) - 1]
        message.state, message.lease_until, message.error = (
            "pending",
            None,
            mask_numbers(detail)[:200],
        )
        message.due_at = now + timedelta(seconds=backoff)
        return
    _fail(session, message, detail, now)


async def record_unknown(
    session: AsyncSession, *, message_id: int, fence: int, detail: str, now: datetime
) -> None:
    """The request left and no answer came: the text may have been sent. Never sent again."""
    if not await _fenced(
        session,
        message_id,
        fence,
        state="unknown",
        error=mask_numbers(detail)[:200],
        lease_until=None,
    ):
        return
    message = await _load(session, message_id)
    _settled(message)
    _event(session, message, EventType.MESSAGE_UNKNOWN, f": outcome unknown ({detail})", now)


async def record_blocked(
    session: AsyncSession, *, message_id: int, fence: int, reason: str, now: datetime
) -> None:
    """The pumping guard stopped the text before any provider saw it: failed, never retried
    (the guard recorded the block and its reason)."""
    del now  # the block's audit event carries the time
    await _fenced(
        session, message_id, fence, state="failed", error=f"blocked: {reason}", lease_until=None
    )


def _fail(session: AsyncSession, message: OutboundMessage, detail: str, now: datetime) -> None:
    message.state, message.error, message.lease_until = "failed", mask_numbers(detail)[:200], None
    _settled(message)
    _event(session, message, EventType.MESSAGE_FAILED, f" failed: {detail}", now)


async def apply_status(
    session: AsyncSession,
    *,
    message_id: int,
    external_id: str,
    provider: str,
    state: DeliveryState,
    detail: str,
    now: datetime,
) -> bool:
    """A provider's later word about a text (a status callback). Only moves forward; returns
    whether anything changed. A callback for a text whose send timed out (`unknown`) shows it
    was sent after all."""
    message = await session.get(
        OutboundMessage, message_id, with_for_update=True, populate_existing=True
    )
    if message is None or message.state not in _RANK:
        return False  # unknown id, not sent yet, or already final
    if message.external_id not in (None, external_id):
        return False  # about some other message
    if state == DeliveryState.FAILED:
        target = "failed"
    elif state in (DeliveryState.DELIVERED, DeliveryState.ANSWERED):
        target = "delivered"
    else:
        target = "sent"
    if target == "failed" and message.state == "delivered":
        return False  # it arrived; a later failure report cannot undo that
    if target != "failed" and _RANK[target] <= _RANK[message.state]:
        return False
    message.external_id = message.external_id or external_id
    message.provider = message.provider or provider
    message.sent_at = message.sent_at or now
    message.lease_until = None
    _settled(message)
    if target == "failed":
        _fail(session, message, detail or "not delivered", now)
    else:
        message.state = target
    return True
