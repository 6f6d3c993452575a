"""Per-contact paging limits, and SMS bundles: what a wave of reports does to one person's phone.

Runs inside the dispatcher's claim transaction, after the claim and before the commit, over the
pages just claimed:

- **Calls**: at most `max_calls_at_once` calls ring one person. A call counts while its page is
  in flight (sending, sent, delivered or unknown; not finished, no hang-up ordered) and was
  claimed less than `CALL_HELD_FOR` ago, so a lost status callback cannot block them for good.
  A call over the limit goes back to `pending` for `CALL_RETRY` (not counted as a try, no
  timeline event); among one person's claimed calls the report closest to its deadline goes
  first.
- **SMS**: at most `max_sms_per_window` messages reach one person per window (a bundle is one
  message). Over the limit, that person's SMS pages wait (`pending`, due when the window frees a
  slot). When a slot is free and more than one SMS page of that person is waiting, they go out as
  one message: the page whose report is closest to its deadline carries it (`bundle_id` = its
  id), the others ride along as `sending` without a lease of their own and follow the carrier's
  outcome (`page/service.py`). A single page goes out alone, as always.

The person's staff row is locked first (in id order), so two engines cannot both decide that a
slot is free; pages another engine holds are skipped, never waited for.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, ScalarSelect, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from providers.base import Channel
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


async def apply_limits(
    session: AsyncSession,
    *,
    claimed: Mapping[int, int],
    limits: PagingLimits,
    now: datetime,
    lease_until: datetime,
) -> list[Send]:
    """Of the pages just claimed (`page id → fence`), what goes out now, most urgent first. Pages
    held back are already `pending` again when this returns."""
    if not claimed:
        return []
    rows = (
        await session.execute(
            select(Page.id, Page.staff_id, Page.channel, Page.report_id, Report.deadline_at)
            .join(Report, Report.id == Page.report_id)
            .where(Page.id.in_(claimed))
        )
    ).all()
    limited = sorted({r.staff_id for r in rows if r.channel in (Channel.VOICE, Channel.SMS)})
    if limited:
        await session.execute(
            select(Staff.id).where(Staff.id.in_(limited)).order_by(Staff.id).with_for_update()
        )
    groups: dict[tuple[str, str], list[Any]] = defaultdict(list)
    sends: list[tuple[datetime, Send]] = []
    for row in rows:
        if row.channel in (Channel.VOICE, Channel.SMS):
            groups[(row.channel, row.staff_id)].append(row)
        else:
            sends.append((row.deadline_at, Send(row.id, claimed[row.id], (row.report_id,))))
    exclude = list(claimed)
    for (channel, staff_id), mine in groups.items():
        mine.sort(key=lambda r: (r.deadline_at, r.id))
        if channel == Channel.VOICE:
            free = limits.max_calls_at_once - await _calls_in_flight(
                session, staff_id, exclude=exclude, now=now
            )
            go, wait = mine[: max(free, 0)], mine[max(free, 0) :]
            sends += [(r.deadline_at, Send(r.id, claimed[r.id], (r.report_id,))) for r in go]
            await _hold(session, [r.id for r in wait], until=now + CALL_RETRY)
        else:
            send = await _sms_for(
                session,
                staff_id,
                mine,
                claimed=claimed,
                exclude=exclude,
                limits=limits,
                now=now,
                lease_until=lease_until,
            )
            if send is not None:
                sends.append(send)
    sends.sort(key=lambda pair: (pair[0], pair[1].page_id))
    return [send for _, send in sends]


async def _calls_in_flight(
    session: AsyncSession, staff_id: str, *, exclude: Sequence[int], now: datetime
) -> int:
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
            Page.id.not_in(exclude),
        )
    )
    return int(count or 0)


async def _hold(session: AsyncSession, page_ids: Sequence[int], *, until: datetime) -> None:
    """Claimed pages that may not go now: back to `pending`, due `until`; the claim was no try."""
    if not page_ids:
        return
    await session.execute(
        update(Page)
        .where(Page.id.in_(page_ids))
        .values(state="pending", due_at=until, lease_until=None, tries=Page.tries - 1)
        .execution_options(synchronize_session=False)
    )


async def _sms_for(
    session: AsyncSession,
    staff_id: str,
    mine: list[Any],
    *,
    claimed: Mapping[int, int],
    exclude: Sequence[int],
    limits: PagingLimits,
    now: datetime,
    lease_until: datetime,
) -> tuple[datetime, Send] | None:
    """One person's claimed SMS pages: one message now (single or bundle), or all of them wait."""
    waiting = (
        await session.execute(
            select(Page.id, Page.report_id, Page.due_at, Report.deadline_at)
            .join(Report, Report.id == Page.report_id)
            .where(
                Page.staff_id == staff_id,
                Page.channel == Channel.SMS,
                Page.state == "pending",
            )
            .with_for_update(skip_locked=True, of=Page)
        )
    ).all()
    sent = await _messages_in_window(
        session, staff_id, since=now - limits.sms_window, exclude=exclude
    )
    if len(sent) >= limits.max_sms_per_window:
        # The window frees a slot when its (len - max + 1)-th newest message leaves it.
        free_at = sent[len(sent) - limits.max_sms_per_window] + limits.sms_window
        await _hold(session, [r.id for r in mine], until=free_at)
        later = [r.id for r in waiting if r.due_at != free_at]
        if later:
            await session.execute(
                update(Page)
                .where(Page.id.in_(later))
                .values(due_at=free_at)
                .execution_options(synchronize_session=False)
            )
        return None
    everyone = sorted([*mine, *waiting], key=lambda r: (r.deadline_at, r.id))
    carrier, riders = everyone[0], everyone[1:]
    report_ids = tuple(dict.fromkeys(r.report_id for r in everyone))
    if not riders:
        await _set_bundle(session, [carrier.id], None)  # left over from an earlier bundle try
        return carrier.deadline_at, Send(carrier.id, claimed[carrier.id], report_ids)
    fence = claimed.get(carrier.id)
    if fence is None:  # a waiting page carries the bundle: claim it here
        fence = await session.scalar(
            update(Page)
            .where(Page.id == carrier.id)
            .values(
                state="sending",
                fence=Page.fence + 1,
                tries=Page.tries + 1,
                claimed_at=now,
                lease_until=lease_until,
            )
            .returning(Page.fence)
            .execution_options(synchronize_session=False)
        )
        assert fence is not None
    await _set_bundle(session, [carrier.id], carrier.id)
    claimed_riders = [r.id for r in riders if r.id in claimed]
    waiting_riders = [r.id for r in riders if r.id not in claimed]
    for ids, tries in ((claimed_riders, Page.tries - 1), (waiting_riders, Page.tries)):
        if ids:
            await session.execute(
                update(Page)
                .where(Page.id.in_(ids))
                .values(
                    state="sending",
                    bundle_id=carrier.id,
                    claimed_at=now,
                    lease_until=None,
                    tries=tries,
                )
                .execution_options(synchronize_session=False)
            )
    return carrier.deadline_at, Send(carrier.id, fence, report_ids, tuple(r.id for r in riders))


async def _set_bundle(session: AsyncSession, page_ids: list[int], bundle_id: int | None) -> None:
    await session.execute(
        update(Page)
        .where(Page.id.in_(page_ids), Page.bundle_id.is_distinct_from(bundle_id))
        .values(bundle_id=bundle_id)
        .execution_options(synchronize_session=False)
    )


async def _messages_in_window(
    session: AsyncSession, staff_id: str, *, since: datetime, exclude: Sequence[int]
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
                and_(
                    Page.state == "sending",
                    Page.sent_at.is_(None),
                    Page.claimed_at > since,
                    Page.id.not_in(exclude),
                ),
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
    message covers them again. Returns how many."""
    rows = (
        await session.execute(
            select(Page.id, _carrier.id.label("carrier_id"), _carrier.state, _carrier.due_at)
            .join(_carrier, _carrier.id == Page.bundle_id)
            .where(_orphaned())
            .with_for_update(skip_locked=True, of=Page)
        )
    ).all()
    for row in rows:
        due_at = max(row.due_at, now) if row.state == "pending" else now
        await session.execute(
            update(Page)
            .where(Page.id == row.id, Page.state == "sending")
            .values(state="pending", bundle_id=None, due_at=due_at)
            .execution_options(synchronize_session=False)
        )
    pending_carriers = {row.carrier_id for row in rows if row.state == "pending"}
    if pending_carriers:
        await session.execute(
            update(Page)
            .where(Page.id.in_(pending_carriers), Page.state == "pending")
            .values(bundle_id=None)
            .execution_options(synchronize_session=False)
        )
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
