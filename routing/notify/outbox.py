"""The outbox for texts that are not pages, and the guard every text passes on its way in.

`queue` writes one `OutboundMessage` (state `pending`, due now) in the caller's transaction; the
engine's `Messenger` sends it after the commit. `guarded` is the outbound-content guard with its
audit trail, for anyone who builds a text we send (SMS, chat, spoken TwiML).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from providers.base import Channel
from routing import guard
from routing.audit import service as audit
from routing.audit.service import EventType
from routing.notify import texts
from routing.notify.models import OutboundMessage

log = logging.getLogger(__name__)

RECEIPT, ACCEPTED, CALLBACK, VERIFICATION = "receipt", "accepted", "callback", "verification"
OPERATORS = "operators"
SMS, VOICE = "sms", "voice"


@dataclass(frozen=True, slots=True)
class Contact:
    """Where the operators' alerts go: an SMS to a phone number, or a chat message to an id."""

    channel: Channel
    to: str


def to_customer(*, kind: str, staff_id: str | None) -> bool:
    """Whether a text goes to a customer (so through the pumping guard): anything but a staff
    member's text (a code, a reply to their page answer) and the operators' alerts."""
    return staff_id is None and kind != OPERATORS


def guarded(
    session: AsyncSession, text: str, *, report_id: str | None, now: datetime, where: str
) -> str:
    """`text` without IBANs, card numbers, amounts or balances. When something was removed, a
    `content_blocked` audit event names the kinds (never the content) and `where` it was found
    ("the receipt SMS", "a page call"). Synchronous: it only adds the event to the session."""
    result = guard.scrub(text)
    if result.blocked:
        kinds = ", ".join(result.found)
        log.warning(
            "outbound content guard removed %s from %s (report %s)",
            kinds,
            where,
            report_id,
            extra={"report_id": report_id},
        )
        audit.record(
            session,
            at=now,
            type=EventType.CONTENT_BLOCKED,
            report_id=report_id,
            detail=f"removed {kinds} from {where} before sending",
            data={"found": list(result.found), "where": where},
        )
    return result.text


def _describe(kind: str, channel: str) -> str:
    how = "call" if channel == VOICE else "SMS"
    return f"the {kind} {how}"


async def queue(
    session: AsyncSession,
    *,
    kind: str,
    channel: str,
    to: str,
    language: str,
    body: str,
    now: datetime,
    report_id: str | None = None,
    staff_id: str | None = None,
) -> OutboundMessage:
    """One text in the outbox, due now; its body through the guard (noted on `report_id`)."""
    safe = guarded(session, body, report_id=report_id, now=now, where=_describe(kind, channel))
    message = OutboundMessage(
        report_id=report_id,
        staff_id=staff_id,
        kind=kind,
        channel=channel,
        to=to,
        language=texts.language_of(language),
        body=safe[:1600],
        state="pending",
        due_at=now,
        fence=0,
        tries=0,
        created_at=now,
    )
    session.add(message)
    await session.flush()
    return message


async def alert_operators(
    session: AsyncSession,
    operators: Sequence[Contact],
    *,
    language: str,
    body: str,
    now: datetime,
) -> int:
    """The operators' alert (the auditor's findings, a tripped pumping breaker) to each contact.
    Returns how many texts were queued."""
    for contact in operators:
        await queue(
            session,
            kind=OPERATORS,
            channel=str(contact.channel),
            to=contact.to,
            language=language,
            body=body,
            now=now,
        )
    return len(operators)
