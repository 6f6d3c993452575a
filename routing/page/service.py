"""Pages: creating a step's pages, and recording what the provider said about them.

Every function here runs inside a transaction the caller owns. Recording functions are fenced:
they only act if the page is still in the state (and claim) the caller saw.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from providers.base import Channel, DeliveryState, DeliveryUpdate, SendResult
from routing.audit import service as audit
from routing.audit.service import EventType
from routing.chain.planner import StepRef
from routing.page.models import EscalationTimer, Page
from routing.report.models import Report
from routing.staff import service as staff_service
from routing.staff.models import Staff

# How many times a page that met a temporary provider error is tried in all, and the backoff.
MAX_TRIES = 4
RETRY_BACKOFF_SECONDS = (2, 4, 8)

FAILED_STATES = ("failed", "canceled")
OPEN_PAGE_STATES = ("pending", "sending", "unknown")
# Not yet its turn: a page of a later preference tier of its step.
QUEUED = "queued"


def describe(channel: str, staff_name: str) -> str:
    how = {"voice": "call", "sms": "SMS", "chat": "chat message"}.get(channel, channel)
    return f"{how} to {staff_name}"


async def create_for_step(
    session: AsyncSession,
    *,
    report: Report,
    ref: StepRef,
    channel: str,
    tiers: list[list[Staff]],
    now: datetime,
    late_seconds: float = 0.0,
) -> list[Page]:
    """One page per person of the step, due now for the first tier; later tiers wait `queued`
    for their turn. A person who cannot be reached on the channel (no chat id, SMS stopped) gets
    a failed page at once, so the fallback sees it."""
    pages: list[Page] = []
    made: list[tuple[Page, Staff, str | None]] = []
    for tier_no, people in enumerate(tiers):
        for member in people:
            page = Page(
                report_id=report.id,
                step_no=ref.step_no,
                attempt_no=ref.attempt_no,
                target_no=len(pages),
                tier_no=tier_no,
                staff_id=member.id,
                channel=channel,
                state="pending" if tier_no == 0 else "queued",
                due_at=now,
                fence=0,
                tries=0,
                is_late=late_seconds > 0,
                created_at=now,
            )
            why_not = staff_service.unreachable(channel, member)
            if why_not:
                page.state, page.error, page.finished_at = "failed", why_not, now
            session.add(page)
            pages.append(page)
            made.append((page, member, why_not))
    await session.flush()  # the pages' ids, for their events
    for page, member, why_not in made:
        if why_not:
            _page_event(session, page, member, EventType.PAGE_FAILED, f" failed: {why_not}", now)
        else:
            turn = f" (tier {page.tier_no + 1}: waits its turn)" if page.state == QUEUED else ""
            _page_event(session, page, member, EventType.PAGE_QUEUED, f" queued{turn}", now)
    return pages


async def release_next_tier(
    session: AsyncSession, *, report_id: str, ref: StepRef, now: datetime
) -> list[Page]:
    """Page the next tier of step `ref` now (its earlier tiers had their turn). Returns its pages,
    or [] when no tier is left waiting. The caller holds the report lock."""
    tier = await session.scalar(
        select(func.min(Page.tier_no)).where(
            Page.report_id == report_id,
            Page.step_no == ref.step_no,
            Page.attempt_no == ref.attempt_no,
            Page.state == "queued",
        )
    )
    if tier is None:
        return []
    pages = list(
        await session.scalars(
            select(Page)
            .where(
                Page.report_id == report_id,
                Page.step_no == ref.step_no,
                Page.attempt_no == ref.attempt_no,
                Page.tier_no == tier,
                Page.state == "queued",
            )
            .order_by(Page.target_no)
        )
    )
    for page in pages:
        page.state, page.due_at = "pending", now
    await session.flush()
    return pages


def _page_event(
    session: AsyncSession, page: Page, staff: Staff, type_: str, what: str, now: datetime
) -> None:
    """A timeline event about one page: "call to Anna" + `what`."""
    audit.record(
        session,
        at=now,
        type=type_,
        report_id=page.report_id,
        detail=f"{describe(page.channel, staff.name)}{what}",
        data=_data(page, staff),
    )


def _data(page: Page, staff: Staff) -> dict[str, object]:
    data: dict[str, object] = {
        "page_id": page.id,
        "channel": page.channel,
        "step": page.step_no,
        "attempt": page.attempt_no,
        "staff": {"id": staff.id, "name": staff.name},
    }
    if page.bundle_id is not None:
        data["bundle_id"] = page.bundle_id
    return data


async def _load(session: AsyncSession, page_id: int) -> tuple[Page, Staff]:
    page = await session.get(Page, page_id, populate_existing=True)
    assert page is not None
    staff = await session.get(Staff, page.staff_id)
    assert staff is not None
    return page, staff


async def _fenced(
    session: AsyncSession, page_id: int, fence: int, expected: str, **values: object
) -> bool:
    """Apply `values` only if the page is still in state `expected` under the caller's claim."""
    result = await session.execute(
        update(Page)
        .where(Page.id == page_id, Page.fence == fence, Page.state == expected)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined, no-any-return]


async def record_sent(
    session: AsyncSession,
    *,
    page_id: int,
    fence: int,
    result: SendResult,
    now: datetime,
    from_state: str = "sending",
) -> None:
    """The provider took the page. When it carried a bundle, every page riding along was sent in
    the same message: each gets the same state and external id, and its own timeline event."""
    if not await _fenced(
        session,
        page_id,
        fence,
        from_state,
        state="sent",
        provider=result.provider,
        external_id=result.external_id,
        sent_at=now,
        lease_until=None,
    ):
        return
    page, staff = await _load(session, page_id)
    riders: list[Page] = []
    if page.bundle_id == page.id:
        await session.execute(
            update(Page)
            .where(Page.bundle_id == page.id, Page.id != page.id, Page.state == "sending")
            .values(
                state="sent", provider=result.provider, external_id=result.external_id, sent_at=now
            )
            .execution_options(synchronize_session=False)
        )
        riders = await _riders(session, page, ("sent",))
    if page.channel == Channel.VOICE:
        acked = await session.scalar(
            select(Report.acknowledged_at).where(Report.id == page.report_id)
        )
        if acked is not None:
            page.hangup_due_at = now  # it rang after someone accepted: end it
    bundled = f" (one message for {len(riders) + 1} reports)" if riders else ""
    for sent in (page, *riders):
        late = " (late)" if sent.is_late else ""
        _page_event(session, sent, staff, EventType.PAGE_SENT, f" sent{late}{bundled}", now)
    if result.state != DeliveryState.SENT:
        for sent in (page, *riders):
            if sent.state == "sent":  # a failed carrier has failed its riders already
                await _apply(session, sent, staff, result.state, result.detail, now)


async def _riders(session: AsyncSession, carrier: Page, states: tuple[str, ...]) -> list[Page]:
    """The pages that rode along in the message `carrier` carried, in the given states."""
    rows = await session.scalars(
        select(Page)
        .where(Page.bundle_id == carrier.id, Page.id != carrier.id, Page.state.in_(states))
        .order_by(Page.id)
        .execution_options(populate_existing=True)
    )
    return list(rows)


async def record_failure(
    session: AsyncSession,
    *,
    page_id: int,
    fence: int,
    detail: str,
    now: datetime,
    temporary: bool,
    retry_after: float | None = None,
    from_state: str = "sending",
) -> None:
    page, staff = await _load(session, page_id)
    if page.fence != fence or page.state != from_state:
        return
    if temporary and page.tries < MAX_TRIES:
        if not await still_wanted(session, report_id=page.report_id, attempt_no=page.attempt_no):
            page.state, page.lease_until, page.finished_at = "canceled", None, now
            return
        backoff = retry_after or RETRY_BACKOFF_SECONDS[min(page.tries, 3) - 1]
        page.state, page.lease_until = "pending", None
        page.due_at = now + timedelta(seconds=backoff)
        _page_event(
            session, page, staff, EventType.PAGE_RETRY, f": {detail}; retry in {backoff:g} s", now
        )
        return
    await _fail(session, page, staff, detail, now)


async def still_wanted(session: AsyncSession, *, report_id: str, attempt_no: int) -> bool:
    """Whether a page of this report and round may still go out: nobody accepted the report
    (resolving accepts too) and no callback appointment started a new round since.

    An acknowledgement or a callback request cancels the pages waiting to go (`cancel_open`), but
    not one in flight, nor a bundle's carrier whose outcome is unknown. Whatever sends such a page
    back to wait (a retry, a resend the provider never got, a rider whose bundle fell apart) asks
    this first, and cancels the page instead when it is no longer wanted."""
    row = (
        await session.execute(
            select(Report.acknowledged_at, Report.attempt_base).where(Report.id == report_id)
        )
    ).one()
    return row.acknowledged_at is None and attempt_no >= row.attempt_base


async def record_unknown(
    session: AsyncSession,
    *,
    page_id: int,
    fence: int,
    detail: str,
    now: datetime,
    reconcile_at: datetime,
) -> None:
    """The request left and no answer came: the page may exist. Never resend blindly."""
    if not await _fenced(
        session,
        page_id,
        fence,
        "sending",
        state="unknown",
        error=detail[:200],
        due_at=reconcile_at,
        lease_until=None,
    ):
        return
    page, staff = await _load(session, page_id)
    _page_event(session, page, staff, EventType.PAGE_UNKNOWN, f": outcome unknown ({detail})", now)


async def record_unsent(session: AsyncSession, *, page_id: int, fence: int, now: datetime) -> None:
    """The worker that claimed the page died before the provider call (no dispatch mark): it
    was never sent, so it is due again at once, as the same page (no try counted), unless it is
    no longer wanted (its report was accepted meanwhile): then it is canceled."""
    page = await session.get(Page, page_id)
    if page is None:
        return
    if await still_wanted(session, report_id=page.report_id, attempt_no=page.attempt_no):
        values: dict[str, object] = {
            "state": "pending",
            "due_at": now,
            "claimed_at": None,
            "tries": Page.tries - 1,
        }
    else:
        values = {"state": "canceled", "finished_at": now}
    await _fenced(session, page_id, fence, "sending", lease_until=None, **values)


async def apply_delivery_update(
    session: AsyncSession, *, page_id: int, update_: DeliveryUpdate, now: datetime
) -> None:
    """A later word from the provider. States only move forward; a terminal state stays. A word
    about a bundle's carrier is about every page in that message."""
    page, staff = await _load(session, page_id)
    pages = [page]
    if page.bundle_id == page.id:
        pages += await _riders(session, page, ("sent", "delivered", "unknown"))
    for each in pages:
        if each.state == "unknown" and update_.state == DeliveryState.SENT:
            # Its send timed out or its worker died, but the provider has it after all: it
            # counts as sent, with nothing to reconcile and nothing to resend.
            each.state = "sent"
            each.external_id = each.external_id or update_.external_id
            each.sent_at = each.sent_at or now
            _page_event(
                session, each, staff, EventType.PAGE_SENT, " (the provider confirmed it)", now
            )
        elif each.state in ("sent", "delivered", "unknown"):
            await _apply(session, each, staff, update_.state, update_.detail, now)


async def _apply(
    session: AsyncSession,
    page: Page,
    staff: Staff,
    state: DeliveryState,
    detail: str,
    now: datetime,
) -> None:
    if state == DeliveryState.FAILED:
        await _fail(session, page, staff, detail or "not delivered", now)
    elif state in (DeliveryState.DELIVERED, DeliveryState.ANSWERED) and page.state != state:
        page.state = str(state)
        _page_event(session, page, staff, EventType.PAGE_DELIVERED, f" {state}", now)


async def _fail(
    session: AsyncSession, page: Page, staff: Staff, detail: str, now: datetime
) -> None:
    """The page failed; a bundle's carrier fails every page that rode along with it, and each
    page's step falls back like a single failed page."""
    riders: list[Page] = []
    if page.bundle_id == page.id:
        riders = await _riders(session, page, ("sending", "sent", "delivered", "unknown"))
    for failed in (page, *riders):
        failed.state, failed.error, failed.finished_at = "failed", detail[:200], now
        failed.lease_until = None
        _page_event(session, failed, staff, EventType.PAGE_FAILED, f" failed: {detail}", now)
    await session.flush()
    for failed in (page, *riders):
        await fall_back_if_step_failed(
            session,
            report_id=failed.report_id,
            ref=StepRef(failed.step_no, failed.attempt_no),
            now=now,
        )


async def fall_back_if_step_failed(
    session: AsyncSession, *, report_id: str, ref: StepRef, now: datetime
) -> bool:
    """When every page of a step that had its turn has failed, nobody can answer it: move on now,
    not later (the step timer, fired now, pages the next tier or the next step)."""
    still_open = await session.scalar(
        select(func.count())
        .select_from(Page)
        .where(
            Page.report_id == report_id,
            Page.step_no == ref.step_no,
            Page.attempt_no == ref.attempt_no,
            Page.state.not_in((*FAILED_STATES, QUEUED)),
        )
    )
    if still_open:
        return False
    result = await session.execute(
        update(EscalationTimer)
        .where(
            EscalationTimer.report_id == report_id,
            EscalationTimer.kind == "step",
            EscalationTimer.step_no == ref.step_no,
            EscalationTimer.attempt_no == ref.attempt_no,
            EscalationTimer.state == "pending",
            EscalationTimer.due_at > now,
        )
        .values(due_at=now)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined, no-any-return]


async def cancel_open(session: AsyncSession, *, report_id: str, now: datetime) -> None:
    """Cancel every timer and every page not yet handed to a provider (the ack transaction).

    A bundle's carrier whose outcome is unknown is left to the reconciler: whether its message
    went out decides whether the other reports riding in it must be paged again."""
    await session.execute(
        update(EscalationTimer)
        .where(
            EscalationTimer.report_id == report_id, EscalationTimer.state.in_(("pending", "leased"))
        )
        .values(state="canceled", lease_until=None)
        .execution_options(synchronize_session=False)
    )
    rider = aliased(Page)
    carries_others = (
        select(rider.id)
        .where(rider.bundle_id == Page.id, rider.id != Page.id, rider.state == "sending")
        .exists()
    )
    canceled = await session.scalars(
        update(Page)
        .where(
            Page.report_id == report_id,
            or_(Page.state.in_(("pending", QUEUED)), (Page.state == "unknown") & ~carries_others),
        )
        .values(state="canceled", finished_at=now, lease_until=None)
        .returning(Page.id)
        .execution_options(synchronize_session=False)
    )
    for page_id in sorted(canceled):
        audit.record(
            session,
            at=now,
            type=EventType.PAGE_CANCELED,
            report_id=report_id,
            detail=f"page {page_id} canceled before it went out: no longer needed",
            data={"page_id": page_id},
        )


async def mark_answered(session: AsyncSession, *, page_id: int, now: datetime) -> None:
    """The person accepted on this page (a keypress, an SMS reply): a human answered it."""
    await session.execute(
        update(Page)
        .where(Page.id == page_id, Page.state.in_(("sent", "delivered", "unknown")))
        .values(state="answered", finished_at=now)
        .execution_options(synchronize_session=False)
    )


async def hang_up_live_calls(session: AsyncSession, *, report_id: str, now: datetime) -> None:
    """Every call of this report that may still ring is to be ended by the engine."""
    await session.execute(
        update(Page)
        .where(
            Page.report_id == report_id,
            Page.channel == Channel.VOICE,
            Page.state.in_(("sent", "delivered")),
            Page.external_id.is_not(None),
            Page.hangup_due_at.is_(None),
        )
        .values(hangup_due_at=now)
        .execution_options(synchronize_session=False)
    )


async def call_progress(
    session: AsyncSession,
    *,
    page_id: int,
    external_id: str,
    update_: DeliveryUpdate | None,
    now: datetime,
    machine: bool = False,
) -> None:
    """A status or answering-machine callback for a page call.

    A callback for a page whose send timed out tells us the call exists after all: it counts as
    sent. A machine (voicemail) is never a human: the page fails and the call is ended.
    """
    if await session.get(Page, page_id) is None:
        return  # a callback for a page we never made (or long gone): nothing to do
    page, staff = await _load(session, page_id)
    if page.external_id not in (None, external_id):
        return  # a callback for some other call: ignore
    if page.state == "unknown":
        page.state, page.external_id, page.sent_at = "sent", external_id, now
        _page_event(session, page, staff, EventType.PAGE_SENT, " sent (confirmed by callback)", now)
    if machine:
        if page.state in ("sent", "delivered"):
            page.hangup_due_at = now
            await _fail(session, page, staff, "voicemail answered, not a person", now)
        return
    if update_ is not None:
        await apply_delivery_update(session, page_id=page_id, update_=update_, now=now)
