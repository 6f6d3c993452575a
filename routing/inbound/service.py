"""What people send us: a staff member's keypress or SMS reply, a customer's SMS.

Provider adapters turn webhooks into plain values; these functions decide what they mean.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from providers.base import Channel
from routing import crypto
from routing.audit import service as audit
from routing.audit.service import EventType
from routing.bridge import service as bridge
from routing.db import insert_ignoring_conflicts
from routing.errors import AlreadyAcknowledged, NotFound
from routing.inbound.models import InboundMessage
from routing.notify import service as notify
from routing.notify import texts
from routing.page import messages
from routing.page.models import Page
from routing.report import service as report_service
from routing.report.models import Report
from routing.report.schemas import ReportCreate
from routing.staff.models import Staff
from routing.types import Category, IntakeChannel, Language, ReportStatus

log = logging.getLogger(__name__)

ACCEPT_WORDS = {"1", "ACK", "OK", "JA", "YES"}
STOP_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"}
START_WORDS = {"START", "UNSTOP"}


@dataclass(frozen=True, slots=True)
class Acceptance:
    """The outcome of "I take it": `won` is False when someone else already holds the report."""

    report: Report
    won: bool
    holder_name: str
    language: str


async def first_time(session: AsyncSession, provider_id: str, now: datetime) -> bool:
    """True the first time a provider message id is seen; redelivered webhooks get False."""
    inserted = await session.scalar(
        insert_ignoring_conflicts(session, InboundMessage)
        .values(provider_id=provider_id, received_at=now)
        .returning(InboundMessage.provider_id)
    )
    return inserted is not None


async def accept_page(
    session: AsyncSession, *, page_id: int, now: datetime, via: str, on_call: bool = False
) -> Acceptance:
    """Accept the page's report for the person paged; when they win, start the voice bridge
    (`on_call`: they accepted during a call and are joining the room already)."""
    page = await session.get(Page, page_id)
    if page is None:
        raise NotFound("no such page", field="page_id")
    staff = await session.get(Staff, page.staff_id)
    assert staff is not None
    language = messages.staff_language(staff.languages)
    try:
        report = await report_service.acknowledge(
            session,
            report_id=page.report_id,
            staff_id=page.staff_id,
            now=now,
            how=via,
            via_page_id=page_id,
        )
    except AlreadyAcknowledged as taken:
        report = await report_service.get(session, page.report_id)
        return Acceptance(report, False, taken.holder_name, language)
    if report.acknowledged_at == now:  # this call won it (not a repeat by the same person)
        await bridge.connect(session, report=report, staff=staff, acceptor_on_call=on_call, now=now)
    return Acceptance(report, True, staff.name, language)


async def accept_report(
    session: AsyncSession, *, report_id: str, staff: Staff, now: datetime, how: str
) -> Report:
    """`staff` accepts the report directly (the app, the console, a chat button of a colleague
    not paged): as on a page, the one who wins it is called into the room with the customer.
    Raises `AlreadyAcknowledged` when someone else holds it."""
    report = await report_service.acknowledge(
        session, report_id=report_id, staff_id=staff.id, now=now, how=how
    )
    if report.acknowledged_at == now:  # this call won it (not a repeat by the same person)
        await bridge.connect(session, report=report, staff=staff, acceptor_on_call=False, now=now)
    return report


async def accept_first(
    session: AsyncSession, *, page_ids: Sequence[int], now: datetime, via: str
) -> Acceptance:
    """Accept the first of `page_ids` (most urgent first) whose report nobody holds yet; when
    every one was taken meanwhile, the last answer says who has it."""
    assert page_ids, "nothing to accept"
    result: Acceptance | None = None
    for page_id in page_ids:
        result = await accept_page(session, page_id=page_id, now=now, via=via)
        if result.won:
            break
    assert result is not None
    return result


async def staff_by_phone(session: AsyncSession, phone: str) -> list[Staff]:
    """The staff members whose phone is `phone` (E.164), found by its keyed hash."""
    found = select(Staff).where(Staff.phone_hash == crypto.phone_hash(phone))
    return list(await session.scalars(found))


async def staff_sms(
    session: AsyncSession, *, staff: list[Staff], body: str, now: datetime
) -> str | None:
    """A staff member texted us. Returns the reply to send, or None for no reply.

    `1`, `ACK`, `OK`, `JA`, `YES` (any case) accept, of the open reports this number was sent
    an SMS page for in the last hour, the one closest to its deadline (in a wave: the oldest);
    `ACK K7Q4M2` picks the report with that reference. The reply names the report. STOP turns
    their SMS pages off.
    """
    words = body.strip().upper().split()
    language = messages.staff_language(staff[0].languages)
    if not words:
        return messages.text(messages.SMS_HELP, language)
    if len(words) == 1 and words[0] in STOP_WORDS | START_WORDS:
        stopped = words[0] in STOP_WORDS
        for member in staff:
            await _set_sms_stopped(session, member, stopped, now)
        # After STOP the carrier sends its own confirmation and blocks ours.
        return None if stopped else messages.text(messages.SMS_RESUMED, language)
    if words[0] not in ACCEPT_WORDS:
        return messages.text(messages.SMS_HELP, language)
    staff_ids = [s.id for s in staff]
    reference = words[1] if len(words) > 1 else None
    page_ids = [] if reference else await _sms_pages_by_deadline(session, staff_ids, now)
    if not page_ids:
        page = await _page_to_accept(session, staff_ids, reference)
        if page is None:
            return messages.text(messages.SMS_NOTHING_OPEN, language)
        page_ids = [page.id]
    result = await accept_first(session, page_ids=page_ids, now=now, via="SMS reply")
    category = messages.CATEGORY_NAMES[language].get(result.report.category, "")
    if result.won or result.report.acknowledged_by_id in set(staff_ids):
        return messages.text(
            messages.SMS_ACCEPTED, language, reference=result.report.reference, category=category
        )
    return messages.text(
        messages.SMS_TAKEN, language, reference=result.report.reference, name=result.holder_name
    )


# A bare `1` takes an open report from the SMS pages of this long ago at most.
SMS_REPLY_REACH = timedelta(hours=1)
# How many candidates a bare `1` tries when others take them at the same moment.
SMS_REPLY_TRIES = 20


async def _sms_pages_by_deadline(
    session: AsyncSession, staff_ids: list[str], now: datetime
) -> list[int]:
    """One SMS page per open report these people were sent in the last hour (alone or in a
    bundle), the report closest to its deadline first."""
    rows = (
        await session.execute(
            select(Page.id, Page.report_id)
            .join(Report, Report.id == Page.report_id)
            .where(
                Page.staff_id.in_(staff_ids),
                Page.channel == Channel.SMS,
                Page.state.in_(("sent", "delivered")),
                Page.sent_at >= now - SMS_REPLY_REACH,
                Report.acknowledged_at.is_(None),
                Report.status != ReportStatus.RESOLVED,
            )
            .order_by(Report.deadline_at, Report.id, Page.id.desc())
            .limit(SMS_REPLY_TRIES * 4)
        )
    ).all()
    by_report: dict[str, int] = {}
    for row in rows:
        by_report.setdefault(row.report_id, row.id)
    return list(by_report.values())[:SMS_REPLY_TRIES]


async def _page_to_accept(
    session: AsyncSession, staff_ids: list[str], reference: str | None
) -> Page | None:
    """The most recent page to these people (with that reference, if given) whose report is
    still open; failing that, the most recent one at all (so a late reply learns who has it)."""
    query = (
        select(Page)
        .join(Report, Report.id == Page.report_id)
        .where(Page.staff_id.in_(staff_ids), Page.state != "pending")
        .order_by(Page.id.desc())
        .limit(1)
    )
    if reference is not None:
        query = query.where(Report.reference == reference)
    open_page = await session.scalar(query.where(Report.acknowledged_at.is_(None)))
    return open_page or await session.scalar(query)


async def _set_sms_stopped(
    session: AsyncSession, staff: Staff, stopped: bool, now: datetime
) -> None:
    if (staff.sms_stopped_at is not None) == stopped:
        return
    staff.sms_stopped_at = now if stopped else None
    if stopped:
        log.warning("staff %s texted STOP: their SMS pages are off until START", staff.id)
    audit.record(
        session,
        at=now,
        type="staff_sms_stopped" if stopped else "staff_sms_started",
        actor=staff.id,
        detail=(
            f"{staff.name} texted STOP: SMS pages to them are off; other channels go on"
            if stopped
            else f"{staff.name} texted START: SMS pages are on again"
        ),
        data={"staff": {"id": staff.id, "name": staff.name}},
    )


async def open_report_from(session: AsyncSession, phone: str) -> Report | None:
    """The customer's open report (not resolved), newest first; `phone` in E.164."""
    return await session.scalar(
        select(Report)
        .where(
            Report.callback_phone_hash == crypto.phone_hash(phone),
            Report.status != ReportStatus.RESOLVED,
        )
        .order_by(Report.received_at.desc())
        .limit(1)
    )


async def customer_sms(
    session: AsyncSession,
    *,
    phone: str,
    body: str,
    now: datetime,
    sla_seconds: int,
    prebreach_seconds: int | None = None,
) -> tuple[str | None, bool]:
    """A customer texted the SOS number: a new report, or more words for their open one.
    Returns the reply (through the content guard) and whether a new report was made.

    A new report gets no reply: its receipt (reference and promise) is queued as an SMS in the
    outbox, once per report, whoever queues it first."""
    open_report = await open_report_from(session, phone)
    if open_report is not None:
        text_so_far = open_report.description or ""
        open_report.description = (text_so_far + "\n" + body).strip()[-4000:]
        open_report.contacts += 1
        audit.record(
            session,
            at=now,
            type=EventType.CONTACT,
            report_id=open_report.id,
            detail="the customer got in touch again by sms (added to the description); "
            "joined this case",
            data={"channel": "sms", "contacts": open_report.contacts},
        )
        reply = texts.message_added(language=open_report.language, reference=open_report.reference)
        return notify.guarded(
            session, reply, report_id=open_report.id, now=now, where="an SMS reply to the customer"
        ), False
    data = ReportCreate.model_construct(
        category=Category.OTHER,
        callback_phone=phone,
        language=Language.NL,
        customer_ref=None,
        description=body[:2000] or None,
        channel="app",
    )
    report, _ = await report_service.submit(
        session,
        data=data,
        now=now,
        sla_seconds=sla_seconds,
        prebreach_seconds=prebreach_seconds,
        channel=IntakeChannel.SMS,
    )
    await notify.queue_receipt(session, report=report, now=now)
    return None, True


async def staff_by_chat_id(session: AsyncSession, chat_id: str) -> list[Staff]:
    """The staff members whose chat id is `chat_id` (a chat user who clicked a button)."""
    if not chat_id:
        return []
    return list(
        await session.scalars(select(Staff).where(Staff.chat_id == chat_id).order_by(Staff.id))
    )
