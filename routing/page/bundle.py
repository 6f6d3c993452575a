"""Per-contact paging limits, and SMS bundles: what a wave of reports does to one person's phone.

`claim_due` is the dispatcher's claim: it locks the due pages of the most urgent reports (earliest
deadline first), decides within the limits what goes now, and claims only that:

- **Calls**: at most `max_calls_at_once` calls ring one person. A call counts while its page is
  in flight (sending, sent, delivered or unknown; not finished, no hang-up ordered) and was
  claimed less than `CALL_HELD_FOR` ago, so a lost status callback cannot block them for good.
  A call over the limit stays `pending`, due again after `CALL_RETRY` (no try counted, no
  timeline event); among one person's due calls the report closest to its deadline goes first.
- **SMS**: at most `max_sms_per_window` messages reach one person per window (a bundle is one
  message). Over the limit, that person's SMS pages wait (`pending`, due when the window frees a
  slot). When a slot is free and more than one SMS page of that person is waiting, they go out as
  one message: the page whose report is closest to its deadline carries it (`bundle_id` = its
  id), the others ride along as `sending` without a lease of their own and follow the carrier's
  outcome (`page/service.py`). A single page goes out alone, as always.

The people's staff rows are locked (in id order) before deciding, so two engines cannot both see
the same free slot; pages another engine holds are skipped, never waited for.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, ScalarSelect, and_, case, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from providers.base import Channel
from routing.page import service as page_service
from routing.page.models import Page
from routing.report.models import Report
from routing.staff.models import Staff
from routing.types import ReportStatus

# A call claimed longer ago than this no longer holds its person (its callback may be lost).
CALL_HELD_FOR = timedelta(minutes=2)
# How long a call over the limit waits before it is looked at again.
CALL_RETRY = timedelta(seconds=5)
IN_FLIGHT = ("sending", "sent", "delivered", "unknown")


@dataclass(frozen=True, slots=True)
class PagingLimits:
    """How much paging one staff member gets, whatever the number of open reports."""

    max_calls_at_once: int = 1
    max_sms_per_window: int = 5
    sms_window_seconds: int = 900

    def __post_init__(self) -> None:
        if min(self.max_calls_at_once, self.max_sms_per_window, self.sms_window_seconds) < 1:
            raise ValueError("paging limits must be at least 1")

    @property
    def sms_window(self) -> timedelta:
        return timedelta(seconds=self.sms_window_seconds)


@dataclass(frozen=True, slots=True)
class Send:
    """One message to send now: page `page_id` (claimed under `fence`) carries it. In a bundle,
    `members` ride along; `report_ids` are the reports it covers, the carrier's first."""

    page_id: int
    fence: int
    report_ids: tuple[str, ...]
    members: tuple[int, ...] = ()

    @property
    def is_bundle(self) -> bool:
        return bool(self.members)


@dataclass
class _Plan:
    """What to write. Every page row is written once in the claim transaction: on PostgreSQL a
    second update of a row the transaction already changed re-checks its foreign keys, taking key
    locks on its report and staff rows that an acknowledgement may hold (a deadlock)."""

    alone: list[Any] = field(default_factory=list)  # rows sent on their own
    bundles: list[tuple[Any, list[Any]]] = field(default_factory=list)  # (carrier, riders)
    later: dict[datetime, list[int]] = field(default_factory=lambda: defaultdict(list))


async def claim_due(
    session: AsyncSession,
    *,
    now: datetime,
    limit: int,
    limits: PagingLimits,
    lease_until: datetime,
) -> tuple[int, list[Send]]:
    """Claim the due pages of the most urgent reports (earliest deadline first), within the
    per-contact limits. Returns how many due pages were looked at, and what to send now."""
    deadline = select(Report.deadline_at).where(Report.id == Page.report_id).scalar_subquery()
    due = (
        await session.execute(
            select(
                Page.id, Page.staff_id, Page.channel, Page.report_id, deadline.label("deadline_at")
            )
            .where(Page.state == "pending", Page.due_at <= now)
            .order_by(deadline, Page.id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=Page)
        )
    ).all()
    if not due:
        return 0, []
    limited = sorted({r.staff_id for r in due if r.channel in (Channel.VOICE, Channel.SMS)})
    if limited:
        # NO KEY UPDATE: serialises engines deciding for the same person, but not the key-share
        # locks that inserting a page or recording an acknowledgement take on the staff row.
        await session.execute(
            select(Staff.id)
            .where(Staff.id.in_(limited))
            .order_by(Staff.id)
            .with_for_update(key_share=True)
        )
    plan = _Plan()
    groups: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for row in due:
        if row.channel in (Channel.VOICE, Channel.SMS):
            groups[(row.channel, row.staff_id)].append(row)
        else:
            plan.alone.append(row)
    due_ids = [r.id for r in due]
    for (channel, staff_id), mine in groups.items():
        mine.sort(key=lambda r: (r.deadline_at, r.id))
        if channel == Channel.VOICE:
            free = max(limits.max_calls_at_once - await _calls_in_flight(session, staff_id, now), 0)
            plan.alone += mine[:free]
            plan.later[now + CALL_RETRY] += [r.id for r in mine[free:]]
        else:
            await _plan_sms(session, plan, staff_id, mine, due_ids, limits, now)
    return len(due), await _write(session, plan, now, lease_until)


async def _calls_in_flight(session: AsyncSession, staff_id: str, now: datetime) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(Page)
        .where(
            Page.staff_id == staff_id,
            Page.channel == Channel.VOICE,
            Page.state.in_(IN_FLIGHT),
            Page.finished_at.is_(None),
            Page.hangup_due_at.is_(None),  # being ended (someone accepted): no longer holds
            Page.claimed_at > now - CALL_HELD_FOR,
        )
    )
    return int(count or 0)


async def _plan_sms(
    session: AsyncSession,
    plan: _Plan,
    staff_id: str,
    mine: list[Any],
    due_ids: list[int],
    limits: PagingLimits,
    now: datetime,
) -> None:
    """One person's due SMS pages: one message now (alone, or a bundle with every other page
    waiting for them), or all of them wait for the window to free a slot."""
    waiting = (
        await session.execute(
            select(Page.id, Page.report_id, Page.due_at, Report.deadline_at)
            .join(Report, Report.id == Page.report_id)
            .where(
                Page.staff_id == staff_id,
                Page.channel == Channel.SMS,
                Page.state == "pending",
                Page.id.not_in(due_ids),
            )
            .with_for_update(skip_locked=True, of=Page)
        )
    ).all()
    sent = await _messages_in_window(session, staff_id, since=now - limits.sms_window)
    if len(sent) >= limits.max_sms_per_window:
        # A slot frees when the max-th newest message leaves the window.
        free_at = sent[len(sent) - limits.max_sms_per_window] + limits.sms_window
        plan.later[free_at] += [r.id for r in mine]
        plan.later[free_at] += [r.id for r in waiting if r.due_at != free_at]
        return
    everyone = sorted([*mine, *waiting], key=lambda r: (r.deadline_at, r.id))
    if len(everyone) == 1:
        plan.alone.append(everyone[0])
    else:
        plan.bundles.append((everyone[0], everyone[1:]))


async def _write(
    session: AsyncSession, plan: _Plan, now: datetime, lease_until: datetime
) -> list[Send]:
    for until, ids in plan.later.items():
        if ids:
            await session.execute(
                update(Page)
                .where(Page.id.in_(ids))
                .values(due_at=until)
                .execution_options(synchronize_session=False)
            )
    carriers = [carrier.id for carrier, _ in plan.bundles]
    claimed = [r.id for r in plan.alone] + carriers
    fences: dict[int, int] = {}
    if claimed:
        rows = await session.execute(
            update(Page)
            .where(Page.id.in_(claimed))
            .values(
                state="sending",
                lease_until=lease_until,
                claimed_at=now,
                dispatched_at=None,  # until the dispatcher's own mark, just before it sends
                tries=Page.tries + 1,
                fence=Page.fence + 1,
                bundle_id=case((Page.id.in_(carriers), Page.id), else_=None),
            )
            .returning(Page.id, Page.fence)
            .execution_options(synchronize_session=False)
        )
        fences = {row.id: row.fence for row in rows}
    for carrier, riders in plan.bundles:
        await session.execute(
            update(Page)
            .where(Page.id.in_([r.id for r in riders]))
            .values(state="sending", bundle_id=carrier.id, claimed_at=now, lease_until=None)
            .execution_options(synchronize_session=False)
        )
    sends = [(r.deadline_at, Send(r.id, fences[r.id], (r.report_id,))) for r in plan.alone]
    for carrier, riders in plan.bundles:
        report_ids = tuple(dict.fromkeys(r.report_id for r in (carrier, *riders)))
        members = tuple(r.id for r in riders)
        sends.append(
            (carrier.deadline_at, Send(carrier.id, fences[carrier.id], report_ids, members))
        )
    sends.sort(key=lambda pair: (pair[0], pair[1].page_id))
    return [send for _, send in sends]


async def _messages_in_window(
    session: AsyncSession, staff_id: str, *, since: datetime
) -> list[datetime]:
    """When each SMS message to this person in the window went out (or left, if still sending),
    oldest first. A bundle is one message."""
    at = func.min(func.coalesce(Page.sent_at, Page.claimed_at))
    rows = await session.scalars(
        select(at)
        .where(
            Page.staff_id == staff_id,
            Page.channel == Channel.SMS,
            or_(
                Page.sent_at > since,
                and_(Page.state == "sending", Page.sent_at.is_(None), Page.claimed_at > since),
            ),
        )
        .group_by(func.coalesce(Page.bundle_id, Page.id))
    )
    return sorted(t for t in rows if t is not None)


# --- riders whose carrier moved on without them ---------------------------------------------------

_carrier = aliased(Page)


def _orphaned() -> ColumnElement[bool]:
    """Riders still `sending` whose carrier (joined as `_carrier`) went back to `pending` (a
    retry, or the provider said it never got it) or was canceled (its report was accepted while
    its outcome was unknown)."""
    return and_(
        Page.state == "sending",
        Page.lease_until.is_(None),
        Page.bundle_id != Page.id,
        _carrier.state.in_(("pending", "canceled")),
    )


def orphans_due() -> ScalarSelect[Any]:
    """For the engine's due check: when the oldest orphaned rider was claimed, if any."""
    return (
        select(func.min(Page.claimed_at))
        .join(_carrier, _carrier.id == Page.bundle_id)
        .where(_orphaned())
        .scalar_subquery()
    )


async def release_orphans(session: AsyncSession, *, now: datetime) -> int:
    """Put orphaned riders back to `pending` (due with their carrier, or now), so the next
    message covers them again; a rider no longer wanted (its report was accepted meanwhile) is
    canceled instead. Returns how many."""
    rows = (
        await session.execute(
            select(Page.id, Page.report_id, Page.attempt_no, _carrier.state, _carrier.due_at)
            .join(_carrier, _carrier.id == Page.bundle_id)
            .where(_orphaned())
            .with_for_update(skip_locked=True, of=Page)
        )
    ).all()
    for row in rows:
        due_at = max(row.due_at, now) if row.state == "pending" else now
        wanted = await page_service.still_wanted(
            session, report_id=row.report_id, attempt_no=row.attempt_no
        )
        values = (
            {"state": "pending", "due_at": due_at}
            if wanted
            else {"state": "canceled", "finished_at": now}
        )
        await session.execute(
            update(Page)
            .where(Page.id == row.id, Page.state == "sending")
            .values(bundle_id=None, **values)
            .execution_options(synchronize_session=False)
        )
    # A pending carrier keeps its stale `bundle_id` until its next claim sets it afresh.
    return len(rows)


# --- accepting from a bundle ----------------------------------------------------------------------


async def pages_to_accept(session: AsyncSession, *, page_id: int) -> list[int]:
    """The pages an accept link on page `page_id` may take, closest deadline first: of its bundle
    (or of the page alone) those whose report is still open. Empty when every one was taken."""
    page = await session.get(Page, page_id)
    if page is None:
        return []
    same = Page.id == page_id if page.bundle_id is None else Page.bundle_id == page.bundle_id
    return list(
        await session.scalars(
            select(Page.id)
            .join(Report, Report.id == Page.report_id)
            .where(
                same,
                Report.acknowledged_at.is_(None),
                Report.status != ReportStatus.RESOLVED,
            )
            .order_by(Report.deadline_at, Page.id)
        )
    )
