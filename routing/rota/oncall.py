"""Who is on call at an instant, and when that changes: pure functions, no I/O.

Shifts are wall-clock arithmetic in the schedule's zone, so a daily 20:00 hand-off stays at 20:00
local time and the shift over the night the clocks move lasts 23 or 25 hours. A local time the
clocks skip (02:30 on the spring night) happens at the first instant after it (03:00); a local time
that occurs twice (02:30 on the autumn night) happens the first time.

At an instant:
1. each layer has at most one member on call: the shift date is the local date, or the day before
   when the instant is before that date's hand-off; the member is
   `members[(days or weeks since start_date) % len(members)]`; nobody before `start_date` or
   outside the layer's `active` window;
2. the last (highest) layer that has someone wins;
3. overrides with `starts_at <= at < ends_at` apply: every `replace` (only when the replaced person
   is on call), then every `add`, then every `remove` (a removed person is off, whatever else
   says).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from routing.rota.schemas import WEEKDAYS, LayerIn

HORIZON = timedelta(days=7)
_KIND_ORDER = {"replace": 0, "add": 1, "remove": 2}


@dataclass(frozen=True, slots=True)
class Window:
    """A layer's `active` restriction; `days` are weekday numbers (Monday 0)."""

    days: frozenset[int]
    start: time
    end: time


@dataclass(frozen=True, slots=True)
class Rotation:
    members: tuple[str, ...]
    weekly: bool
    handoff: time
    start_date: date
    active: Window | None = None


@dataclass(frozen=True, slots=True)
class Override:
    kind: str
    staff_id: str
    replaces_staff_id: str | None
    starts_at: datetime
    ends_at: datetime


@dataclass(frozen=True, slots=True)
class Rules:
    """Everything that decides who is on call in one schedule."""

    zone: ZoneInfo
    layers: tuple[Rotation, ...]
    overrides: tuple[Override, ...] = ()


@dataclass(frozen=True, slots=True)
class Shift:
    """A period in which the same people (in this order) are on call; `staff` may be empty."""

    starts_at: datetime
    ends_at: datetime
    staff: tuple[str, ...]


def rotation(layer: LayerIn) -> Rotation:
    active = None
    if layer.active is not None:
        active = Window(
            days=frozenset(WEEKDAYS.index(d) for d in layer.active.days),
            start=layer.active.from_,
            end=layer.active.to,
        )
    return Rotation(
        members=tuple(layer.members),
        weekly=layer.rotation == "weekly",
        handoff=layer.handoff_time,
        start_date=layer.start_date,
        active=active,
    )


def rules(time_zone: str, layers: Iterable[LayerIn], overrides: Iterable[Override] = ()) -> Rules:
    return Rules(
        zone=ZoneInfo(time_zone),
        layers=tuple(rotation(layer) for layer in layers),
        overrides=tuple(overrides),
    )


def local_instant(day: date, clock: time, zone: ZoneInfo) -> datetime:
    """The UTC instant the wall clock in `zone` shows `clock` on `day` (the first time, if twice;
    the first instant after it, if the clocks skip it)."""
    naive = datetime.combine(day, clock)
    first = naive.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if _wall(first, zone) == naive:
        return first
    # Skipped: the jump lies between the two readings zoneinfo gives for a time in a gap.
    lo, hi = sorted((naive.replace(tzinfo=zone, fold=1).astimezone(UTC), first))
    below, above = 0, int((hi - lo).total_seconds())  # wall(lo + below) < naive <= wall(lo + above)
    while above - below > 1:
        middle = (below + above) // 2
        if _wall(lo + timedelta(seconds=middle), zone) >= naive:
            above = middle
        else:
            below = middle
    return lo + timedelta(seconds=above)


def _wall(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None, fold=0)


def _in_window(window: Window, at: datetime, zone: ZoneInfo) -> bool:
    today = at.astimezone(zone).date()
    for day in (today - timedelta(days=1), today):
        if day.weekday() not in window.days:
            continue
        starts = local_instant(day, window.start, zone)
        end_day = day if window.end > window.start else day + timedelta(days=1)
        if starts <= at < local_instant(end_day, window.end, zone):
            return True
    return False


def member_at(layer: Rotation, at: datetime, zone: ZoneInfo) -> str | None:
    """Who `layer` has on call at `at`, if anyone."""
    if layer.active is not None and not _in_window(layer.active, at, zone):
        return None
    shift_date = at.astimezone(zone).date()
    if at < local_instant(shift_date, layer.handoff, zone):
        shift_date -= timedelta(days=1)
    days = (shift_date - layer.start_date).days
    if days < 0:
        return None
    index = days // 7 if layer.weekly else days
    return layer.members[index % len(layer.members)]


def who(schedule: Rules, at: datetime) -> list[str]:
    """The staff ids on call at `at`, in order, each once."""
    on_call: list[str] = []
    for layer in reversed(schedule.layers):
        member = member_at(layer, at, schedule.zone)
        if member is not None:
            on_call = [member]
            break
    active = [o for o in schedule.overrides if o.starts_at <= at < o.ends_at]
    for override in sorted(active, key=lambda o: (_KIND_ORDER.get(o.kind, 3), o.starts_at)):
        if override.kind == "replace":
            on_call = [override.staff_id if s == override.replaces_staff_id else s for s in on_call]
        elif override.kind == "add":
            on_call.append(override.staff_id)
        elif override.kind == "remove":
            on_call = [s for s in on_call if s != override.staff_id]
    return list(dict.fromkeys(on_call))


def _changes(schedule: Rules, start: datetime, end: datetime) -> list[datetime]:
    """Every instant in (start, end) at which who is on call may change."""
    zone = schedule.zone
    first = start.astimezone(zone).date() - timedelta(days=1)
    last = end.astimezone(zone).date() + timedelta(days=1)
    found: set[datetime] = set()
    day = first
    while day <= last:
        for layer in schedule.layers:
            found.add(local_instant(day, layer.handoff, zone))
            window = layer.active
            if window is not None and day.weekday() in window.days:
                found.add(local_instant(day, window.start, zone))
                end_day = day if window.end > window.start else day + timedelta(days=1)
                found.add(local_instant(end_day, window.end, zone))
        day += timedelta(days=1)
    for override in schedule.overrides:
        found.update((override.starts_at, override.ends_at))
    return sorted(t for t in found if start < t < end)


def shifts(schedule: Rules, start: datetime, end: datetime) -> list[Shift]:
    """[start, end) cut into periods of unchanging on-call people, in order, covering it all."""
    result: list[Shift] = []
    points = [start, *_changes(schedule, start, end)]
    for begin, finish in zip(points, [*points[1:], end], strict=True):
        staff = tuple(who(schedule, begin))
        if result and result[-1].staff == staff:
            result[-1] = Shift(result[-1].starts_at, finish, staff)
        else:
            result.append(Shift(begin, finish, staff))
    return result


def until(schedule: Rules, at: datetime, horizon: timedelta = HORIZON) -> datetime | None:
    """When the people on call at `at` next change; `None` if not within `horizon`."""
    periods = shifts(schedule, at, at + horizon)
    return periods[0].ends_at if len(periods) > 1 else None


def covered(periods: Sequence[Shift]) -> list[tuple[datetime, datetime]]:
    """The ranges of `periods` in which someone is on call, adjacent ones merged."""
    ranges: list[tuple[datetime, datetime]] = []
    for period in periods:
        if not period.staff:
            continue
        if ranges and ranges[-1][1] == period.starts_at:
            ranges[-1] = (ranges[-1][0], period.ends_at)
        else:
            ranges.append((period.starts_at, period.ends_at))
    return ranges
