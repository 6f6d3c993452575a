"""The SOS phone line: a caller in panic picks a language and what happened, and is holding in
the report's conference room while colleagues are paged. The promise clock starts when the call
arrived, and every path through the menu ends with someone being paged (it fails open to fraud).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from routing.db import insert_ignoring_conflicts
from routing.inbound.models import SosCall
from routing.phone import normalize_phone
from routing.report import service as report_service
from routing.report.models import Report
from routing.report.schemas import ReportCreate
from routing.types import Category, IntakeChannel, Language

LANGUAGE_KEYS = {"1": "nl", "2": "en"}
CATEGORY_KEYS = {"1": Category.FRAUD, "2": Category.LOST_CARD, "3": Category.OTHER}
MENU_TRIES = 2

MENU_LANGUAGE = (
    "Welkom bij de SOS-lijn van de bank. Voor Nederlands, druk 1. "
    "Welcome to the bank's SOS line. For English, press 2."
)
MENU_CATEGORY = {
    "nl": "Gaat het om fraude of misbruik van je rekening, druk 1. Een verloren of gestolen pas, "
    "druk 2. Iets anders, druk 3.",
    "en": "For fraud or misuse of your account, press 1. For a lost or stolen card, press 2. "
    "For something else, press 3.",
}
RECEIVED = {
    "nl": "Je melding is ontvangen. Je referentie is {reference}. We bellen nu een collega voor "
    "je. Blijf aan de lijn, je wordt zo doorverbonden. Deel nooit je codes.",
    "en": "Your report has been received. Your reference is {reference}. We are calling a "
    "colleague for you now. Please stay on the line. Never share your codes.",
}
HOLD = {
    "nl": "Blijf aan de lijn. Er komt zo een collega bij je.",
    "en": "Please stay on the line. A colleague will be with you shortly.",
}


async def call_arrived(session: AsyncSession, *, call_sid: str, caller: str, now: datetime) -> None:
    """Note the moment the call arrived (a redelivered webhook keeps the first moment)."""
    await session.execute(
        insert_ignoring_conflicts(session, SosCall).values(
            call_sid=call_sid, from_number=caller[:32], arrived_at=now
        )
    )


async def report_for_call(
    session: AsyncSession,
    *,
    call_sid: str,
    caller: str,
    language: str,
    category: str,
    now: datetime,
    sla_seconds: int,
    prebreach_seconds: int | None = None,
) -> Report:
    """The call's report, created once (menu answers replayed by Twilio change nothing)."""
    await call_arrived(session, call_sid=call_sid, caller=caller, now=now)
    call = await session.get(SosCall, call_sid, with_for_update=True)
    assert call is not None
    if call.report_id is not None:
        return await report_service.get(session, call.report_id)
    try:
        phone = normalize_phone(caller)
    except ValueError:
        phone = caller[:20] or "anonymous"  # withheld: the report stands, a callback cannot
    data = ReportCreate.model_construct(
        category=Category(category),
        callback_phone=phone,
        language=Language(language),
        customer_ref=None,
        description=None,
        channel="app",
    )
    report, _ = await report_service.submit(
        session,
        data=data,
        now=now,
        sla_seconds=sla_seconds,
        prebreach_seconds=prebreach_seconds,
        channel=IntakeChannel.SOS_LINE,
        received_at=call.arrived_at,
    )
    call.report_id, call.language = report.id, language
    return report


async def caller_left(session: AsyncSession, *, call_sid: str, now: datetime) -> None:
    call = await session.get(SosCall, call_sid)
    if call is not None and call.left_at is None:
        call.left_at = now
