"""Who is on call, by wall-clock arithmetic in Europe/Amsterdam, across both 2026 clock changes:
spring 2026-03-29 02:00 CET -> 03:00 CEST (01:00 UTC), autumn 2026-10-25 03:00 CEST -> 02:00 CET
(01:00 UTC)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from routing.rota import oncall
from routing.rota.oncall import Override, Rules
from routing.rota.schemas import LayerIn

AMS = ZoneInfo("Europe/Amsterdam")
A, B, C, D = "anna", "bram", "chris", "dewi"


def t(iso: str) -> datetime:
    """An instant written with its offset, as UTC."""
    value = datetime.fromisoformat(iso)
    assert value.tzinfo is not None
    return value.astimezone(UTC)


def layer(members: list[str], **fields: Any) -> LayerIn:
    body = {
        "name": fields.pop("name", "layer"),
        "members": members,
        "rotation": "daily",
        "handoff_time": "20:00",
        "start_date": "2026-03-01",
        **fields,
    }
    return LayerIn.model_validate(body)


def rules(*layers: LayerIn, overrides: tuple[Override, ...] = ()) -> Rules:
    return oncall.rules("Europe/Amsterdam", layers, overrides)


def local(instant: datetime) -> datetime:
    return instant.astimezone(AMS)


def shift_at(schedule: Rules, at: datetime) -> oncall.Shift:
    """The unchanged stretch around `at`, found within eight days either side."""
    periods = oncall.shifts(schedule, at - timedelta(days=8), at + timedelta(days=8))
    return next(p for p in periods if p.starts_at <= at < p.ends_at)


class TestLocalInstant:
    def test_an_ordinary_time_is_the_wall_clock(self) -> None:
        assert oncall.local_instant(date(2026, 3, 28), time(20), AMS) == t("2026-03-28T19:00Z")
        assert oncall.local_instant(date(2026, 3, 29), time(20), AMS) == t("2026-03-29T18:00Z")

    @pytest.mark.parametrize("skipped", [time(2, 0), time(2, 30), time(2, 59)])
    def test_a_time_the_clocks_skip_happens_when_they_land_at_three(self, skipped: time) -> None:
        assert oncall.local_instant(date(2026, 3, 29), skipped, AMS) == t("2026-03-29T03:00+02:00")

    def test_a_time_that_happens_twice_happens_the_first_time(self) -> None:
        first = oncall.local_instant(date(2026, 10, 25), time(2, 30), AMS)
        assert first == t("2026-10-25T02:30+02:00")
        assert first == t("2026-10-25T00:30Z")


class TestDailyRotation:
    def test_members_take_turns_from_the_start_date_at_the_hand_off(self) -> None:
        schedule = rules(layer([A, B, C], start_date="2026-03-02"))

        assert oncall.who(schedule, t("2026-03-02T19:59+01:00")) == []  # before the first shift
        assert oncall.who(schedule, t("2026-03-02T20:00+01:00")) == [A]
        assert oncall.who(schedule, t("2026-03-03T19:59+01:00")) == [A]  # the night is A's
        assert oncall.who(schedule, t("2026-03-03T20:00+01:00")) == [B]
        assert oncall.who(schedule, t("2026-03-04T20:00+01:00")) == [C]
        assert oncall.who(schedule, t("2026-03-05T20:00+01:00")) == [A]  # round again

    def test_the_shift_over_the_spring_night_lasts_23_hours(self) -> None:
        schedule = rules(layer([A, B], start_date="2026-03-27"))

        night = shift_at(schedule, t("2026-03-29T03:30+02:00"))

        assert night.staff == (B,)
        assert night.ends_at - night.starts_at == timedelta(hours=23)
        assert (local(night.starts_at).hour, local(night.ends_at).hour) == (20, 20)
        assert local(night.starts_at).utcoffset() == timedelta(hours=1)
        assert local(night.ends_at).utcoffset() == timedelta(hours=2)

    def test_the_shift_over_the_autumn_night_lasts_25_hours(self) -> None:
        schedule = rules(layer([A, B], start_date="2026-10-22"))

        night = shift_at(schedule, t("2026-10-25T02:30+01:00"))  # the second 02:30

        assert night.staff == (A,)
        assert night.ends_at - night.starts_at == timedelta(hours=25)
        assert (local(night.starts_at).hour, local(night.ends_at).hour) == (20, 20)

    @pytest.mark.parametrize(
        ("start", "days"), [("2026-03-26T12:00+01:00", 6), ("2026-10-22T12:00+02:00", 6)]
    )
    def test_the_hand_off_stays_at_20_local_on_both_sides_of_the_change(
        self, start: str, days: int
    ) -> None:
        schedule = rules(layer([A, B, C], start_date="2026-03-01"))
        begin = t(start)

        periods = oncall.shifts(schedule, begin, begin + timedelta(days=days))

        hand_offs = [local(p.starts_at) for p in periods[1:]]
        assert len(hand_offs) == days
        assert {(h.hour, h.minute) for h in hand_offs} == {(20, 0)}
        assert [p.staff for p in periods[1:4]] != [periods[1].staff] * 3  # they really rotate

    def test_a_hand_off_the_clocks_skip_happens_at_three(self) -> None:
        schedule = rules(layer([A, B], handoff_time="02:30", start_date="2026-03-28"))

        assert oncall.who(schedule, t("2026-03-29T01:59:59+01:00")) == [A]
        assert oncall.who(schedule, t("2026-03-29T03:00+02:00")) == [B]
        assert oncall.until(schedule, t("2026-03-29T01:00+01:00")) == t("2026-03-29T03:00+02:00")

    def test_a_hand_off_that_happens_twice_counts_once(self) -> None:
        schedule = rules(layer([A, B], handoff_time="02:30", start_date="2026-10-24"))

        assert oncall.who(schedule, t("2026-10-25T02:29+02:00")) == [A]
        assert oncall.who(schedule, t("2026-10-25T02:30+02:00")) == [B]
        # An hour later the wall clock shows 02:00-02:30 again: still B, not A again.
        assert oncall.who(schedule, t("2026-10-25T02:15+01:00")) == [B]
        assert oncall.who(schedule, t("2026-10-26T02:29+01:00")) == [B]


class TestWeeklyRotation:
    def test_the_hand_off_is_on_the_start_dates_weekday(self) -> None:
        schedule = rules(
            layer([A, B], rotation="weekly", handoff_time="09:00", start_date="2026-03-02")
        )

        assert oncall.who(schedule, t("2026-03-02T09:00+01:00")) == [A]
        assert oncall.who(schedule, t("2026-03-08T23:00+01:00")) == [A]
        assert oncall.who(schedule, t("2026-03-09T08:59+01:00")) == [A]
        assert oncall.who(schedule, t("2026-03-09T09:00+01:00")) == [B]
        assert oncall.who(schedule, t("2026-03-16T09:00+01:00")) == [A]

    def test_the_week_over_the_spring_change_is_an_hour_short(self) -> None:
        schedule = rules(
            layer([A, B], rotation="weekly", handoff_time="09:00", start_date="2026-03-16")
        )

        week = shift_at(schedule, t("2026-03-29T12:00+02:00"))

        assert week.staff == (B,)
        assert week.starts_at == t("2026-03-23T09:00+01:00")
        assert week.ends_at == t("2026-03-30T09:00+02:00")
        assert week.ends_at - week.starts_at == timedelta(days=7, hours=-1)

    def test_the_week_over_the_autumn_change_is_an_hour_long(self) -> None:
        schedule = rules(
            layer([A, B], rotation="weekly", handoff_time="09:00", start_date="2026-10-19")
        )

        week = shift_at(schedule, t("2026-10-25T12:00+01:00"))

        assert week.staff == (A,)
        assert (local(week.starts_at).hour, local(week.ends_at).hour) == (9, 9)
        assert week.ends_at - week.starts_at == timedelta(days=7, hours=1)


class TestLayers:
    def test_the_highest_layer_with_someone_wins(self) -> None:
        base = layer([A, B], name="nights and weekends")
        office = layer(
            [C],
            name="office hours",
            handoff_time="09:00",
            active={"days": ["mon", "tue", "wed", "thu", "fri"], "from": "09:00", "to": "17:00"},
        )
        schedule = rules(base, office)

        assert oncall.who(schedule, t("2026-03-30T10:00+02:00")) == [C]  # Monday
        assert oncall.who(schedule, t("2026-03-30T17:00+02:00")) == oncall.who(
            rules(base), t("2026-03-30T17:00+02:00")
        )
        assert oncall.who(schedule, t("2026-03-28T10:00+01:00")) != [C]  # Saturday
        assert oncall.who(rules(office, base), t("2026-03-30T10:00+02:00")) != [C]  # order counts

    def test_a_layer_before_its_start_date_leaves_the_one_below(self) -> None:
        schedule = rules(layer([A]), layer([B], start_date="2026-04-01"))

        assert oncall.who(schedule, t("2026-03-31T22:00+02:00")) == [A]
        assert oncall.who(schedule, t("2026-04-01T22:00+02:00")) == [B]

    def test_an_active_window_past_midnight_belongs_to_the_day_it_starts(self) -> None:
        friday_night = layer([A], active={"days": ["fri"], "from": "18:00", "to": "08:00"})
        schedule = rules(friday_night)

        assert oncall.who(schedule, t("2026-03-06T17:59+01:00")) == []
        assert oncall.who(schedule, t("2026-03-06T18:00+01:00")) == [A]
        assert oncall.who(schedule, t("2026-03-07T07:59+01:00")) == [A]  # Saturday morning
        assert oncall.who(schedule, t("2026-03-07T08:00+01:00")) == []
        assert oncall.who(schedule, t("2026-03-07T18:00+01:00")) == []  # Saturday evening
        assert oncall.who(schedule, t("2026-03-05T23:00+01:00")) == []  # Thursday night

    def test_an_active_window_over_the_spring_night_is_as_long_as_the_wall_clock_says(
        self,
    ) -> None:
        nights = layer([A], active={"days": ["sat"], "from": "22:00", "to": "06:00"})
        schedule = rules(nights)
        begin = t("2026-03-28T12:00+01:00")

        [covered] = oncall.covered(oncall.shifts(schedule, begin, begin + timedelta(days=1)))

        assert covered == (t("2026-03-28T22:00+01:00"), t("2026-03-29T06:00+02:00"))
        assert covered[1] - covered[0] == timedelta(hours=7)


class TestOverrides:
    START, END = t("2026-03-29T01:00+01:00"), t("2026-03-29T09:00+02:00")

    def schedule(self, *overrides: Override) -> Rules:
        return rules(layer([A], start_date="2026-03-01"), overrides=overrides)

    def override(self, kind: str, staff: str, replaces: str | None = None) -> Override:
        return Override(kind, staff, replaces, self.START, self.END)

    def test_replace_swaps_the_person_from_start_inclusive_to_end_exclusive(self) -> None:
        schedule = self.schedule(self.override("replace", D, A))

        assert oncall.who(schedule, self.START - timedelta(microseconds=1)) == [A]
        assert oncall.who(schedule, self.START) == [D]
        assert oncall.who(schedule, t("2026-03-29T08:59:59+02:00")) == [D]
        assert oncall.who(schedule, self.END) == [A]

    def test_replace_does_nothing_when_the_replaced_person_is_off(self) -> None:
        schedule = self.schedule(self.override("replace", D, B))
        assert oncall.who(schedule, self.START) == [A]

    def test_add_puts_someone_on_call_beside_the_rota(self) -> None:
        schedule = self.schedule(self.override("add", D), self.override("add", A))
        assert oncall.who(schedule, self.START) == [A, D]
        assert oncall.who(schedule, self.END) == [A]

    def test_add_covers_a_time_the_rota_leaves_empty(self) -> None:
        schedule = rules(
            layer([A], start_date="2026-04-01"),
            overrides=(self.override("add", D),),
        )
        assert oncall.who(schedule, self.START) == [D]

    def test_remove_takes_someone_off(self) -> None:
        schedule = self.schedule(self.override("remove", A))
        assert oncall.who(schedule, self.START) == []
        assert oncall.who(schedule, self.END) == [A]

    def test_remove_wins_over_add_and_replace(self) -> None:
        schedule = self.schedule(
            self.override("remove", D), self.override("add", D), self.override("replace", D, A)
        )
        assert oncall.who(schedule, self.START) == []

    def test_the_until_of_a_replacement_is_its_end(self) -> None:
        schedule = self.schedule(self.override("replace", D, A))
        assert oncall.until(schedule, self.START) == self.END


class TestShifts:
    def test_shifts_cover_the_range_and_merge_unchanged_stretches(self) -> None:
        schedule = rules(layer([A]))
        begin = t("2026-03-27T12:00+01:00")

        periods = oncall.shifts(schedule, begin, begin + timedelta(days=5))

        assert periods == [oncall.Shift(begin, begin + timedelta(days=5), (A,))]
        assert oncall.until(schedule, begin) is None

    def test_until_is_the_next_change_within_seven_days(self) -> None:
        schedule = rules(
            layer([A, B], rotation="weekly", handoff_time="09:00", start_date="2026-03-02")
        )

        assert oncall.until(schedule, t("2026-03-03T12:00+01:00")) == t("2026-03-09T09:00+01:00")
        assert oncall.until(schedule, t("2026-03-03T12:00+01:00"), timedelta(days=2)) is None

    def test_covered_leaves_out_empty_stretches(self) -> None:
        office = layer([A], handoff_time="09:00", active={"from": "09:00", "to": "17:00"})
        begin = t("2026-03-02T00:00+01:00")

        ranges = oncall.covered(oncall.shifts(rules(office), begin, begin + timedelta(days=2)))

        assert ranges == [
            (t("2026-03-02T09:00+01:00"), t("2026-03-02T17:00+01:00")),
            (t("2026-03-03T09:00+01:00"), t("2026-03-03T17:00+01:00")),
        ]
