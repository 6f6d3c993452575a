"""`GET /v1/sla`: how many reports kept the 10-minute promise, and how fast a human accepted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from routing.types import Role
from tests.harness import Harness

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # the FakeClock's start


async def sla(
    h: Harness, headers: dict[str, str] | None = None, /, **params: str
) -> httpx.Response:
    return await h.client.get(
        "/v1/sla", params=params, headers=h.admin if headers is None else headers
    )


async def summary(h: Harness, **params: str) -> dict[str, Any]:
    r = await sla(h, **params)
    assert r.status_code == 200, r.text
    return dict(r.json())


def iso(when: datetime) -> str:
    return when.isoformat()


def assert_error(r: httpx.Response, status: int, field: str | None = None) -> None:
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert {"code", "message", "field"} <= set(error)
    if field is not None:
        assert error["field"] == field, error


async def month_of_reports(h: Harness) -> None:
    """No chain, so nobody is paged; Anna accepts by hand.

    At T0 six reports arrive. Four are accepted after 10, 20, 30 and 40 s (met). The other two pass
    their deadline (missed); one of them is accepted late, at 700 s. At T0+700 s a seventh report
    arrives and stays open.
    """
    assert h.clock.now() == T0
    await h.staff("Anna")
    reports = [await h.report() for _ in range(6)]
    ids = [report["id"] for report in reports]
    for report_id in ids[:4]:
        h.clock.advance(10)
        assert (await h.ack(report_id, "Anna")).status_code == 200
    await h.advance(700 - 40)  # the engine marks reports 5 and 6 missed at their deadline
    h.expect_accepted_text(*reports[:4], by="Anna")  # "Anna belt u nu", sent on the first tick
    assert h.clock.now() == T0 + timedelta(seconds=700)
    assert (await h.ack(ids[4], "Anna")).json()["sla"]["met"] is False
    assert (await h.get(ids[5]))["sla"]["met"] is False
    await h.report()


class TestSummary:
    async def test_with_no_reports_everything_is_zero_or_null(self, h: Harness) -> None:
        body = await summary(h)
        assert body["reports"] == 0
        assert body["met"] == 0
        assert body["missed"] == 0
        assert body["open"] == 0
        assert body["met_ratio"] is None
        assert body["time_to_ack_seconds"] == {"p50": None, "p90": None, "p99": None, "max": None}

    async def test_counts_ratio_and_exact_percentiles(self, h: Harness) -> None:
        await month_of_reports(h)

        body = await summary(h)

        assert body["reports"] == 7
        assert body["met"] == 4
        assert body["missed"] == 2
        assert body["open"] == 1
        assert body["met_ratio"] == pytest.approx(4 / 6, abs=1e-4)
        # acks after 10, 20, 30, 40 and 700 s; linear interpolation between closest ranks
        assert body["time_to_ack_seconds"] == {
            "p50": pytest.approx(30.0),
            "p90": pytest.approx(40 + 0.6 * 660),
            "p99": pytest.approx(40 + 0.96 * 660),
            "max": pytest.approx(700.0),
        }

    async def test_percentiles_interpolate_between_ranks(self, h: Harness) -> None:
        await h.staff("Anna")
        ids = [(await h.report())["id"] for _ in range(4)]
        for report_id, wait in zip(ids, [5, 10, 15, 70], strict=True):
            h.clock.advance(wait)  # acks at 5, 15, 30 and 100 s after intake
            await h.ack(report_id, "Anna")

        t = (await summary(h))["time_to_ack_seconds"]

        # sorted [5, 15, 30, 100]: p50 at rank 1.5, p90 at 2.7, p99 at 2.97
        assert t["p50"] == pytest.approx(22.5)
        assert t["p90"] == pytest.approx(30 + 0.7 * 70)
        assert t["p99"] == pytest.approx(30 + 0.97 * 70)
        assert t["max"] == pytest.approx(100.0)

    async def test_a_single_ack_is_every_percentile(self, h: Harness) -> None:
        await h.staff("Anna")
        report = await h.report()
        h.clock.advance(123.5)
        await h.ack(report["id"], "Anna")

        body = await summary(h)

        assert body["time_to_ack_seconds"] == {
            "p50": 123.5,
            "p90": 123.5,
            "p99": 123.5,
            "max": 123.5,
        }
        assert body["met"] == 1
        assert body["met_ratio"] == 1.0

    async def test_ack_at_exactly_ten_minutes_is_met(self, h: Harness) -> None:
        await h.staff("Anna")
        report = await h.report()
        h.clock.advance(600)
        await h.ack(report["id"], "Anna")

        body = await summary(h)

        assert (body["met"], body["missed"], body["open"]) == (1, 0, 0)
        assert body["time_to_ack_seconds"]["max"] == 600.0

    async def test_open_reports_have_no_ratio_yet(self, h: Harness) -> None:
        await h.report()
        await h.report()
        body = await summary(h)
        assert (body["reports"], body["open"], body["met"], body["missed"]) == (2, 2, 0, 0)
        assert body["met_ratio"] is None

    async def test_a_missed_report_counts_even_if_nobody_ever_accepts(self, h: Harness) -> None:
        await h.report()
        await h.advance(601)
        body = await summary(h)
        assert (body["reports"], body["missed"], body["open"]) == (1, 1, 0)
        assert body["met_ratio"] == 0.0
        assert body["time_to_ack_seconds"]["max"] is None


class TestPeriod:
    async def test_since_is_inclusive(self, h: Harness) -> None:
        await month_of_reports(h)
        assert (await summary(h, since=iso(T0)))["reports"] == 7
        later = await summary(h, since=iso(T0 + timedelta(seconds=1)))
        assert (later["reports"], later["open"], later["met"]) == (1, 1, 0)

    async def test_until_is_exclusive(self, h: Harness) -> None:
        await month_of_reports(h)
        body = await summary(h, until=iso(T0 + timedelta(seconds=700)))
        assert (body["reports"], body["met"], body["missed"], body["open"]) == (6, 4, 2, 0)
        assert (await summary(h, until=iso(T0)))["reports"] == 0

    async def test_since_and_until_together(self, h: Harness) -> None:
        await month_of_reports(h)
        h.clock.advance(3600)
        await h.report()  # at T0+4300 s

        body = await summary(
            h, since=iso(T0 + timedelta(seconds=1)), until=iso(T0 + timedelta(seconds=4300))
        )

        assert (body["reports"], body["open"]) == (1, 1)
        assert (await summary(h, since=iso(T0)))["reports"] == 8

    async def test_any_zone_means_the_same_instant(self, h: Harness) -> None:
        await month_of_reports(h)
        amsterdam = timezone(timedelta(hours=1))
        cut = (T0 + timedelta(seconds=1)).astimezone(amsterdam)
        assert iso(cut).endswith("+01:00")

        assert (await summary(h, since=iso(cut)))["reports"] == 1
        assert (await summary(h, until=iso(cut)))["reports"] == 6
        zulu = (T0 + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert (await summary(h, since=zulu))["reports"] == 1

    @pytest.mark.parametrize("gap", [0, -1], ids=["equal", "before"])
    async def test_until_not_after_since_is_422(self, h: Harness, gap: int) -> None:
        since = T0
        until = T0 + timedelta(seconds=gap)
        r = await sla(h, since=iso(since), until=iso(until))
        assert_error(r, 422, "until")

    @pytest.mark.parametrize(
        "value", ["yesterday", "2026-13-01T00:00:00Z", "2026-01-05T25:00:00Z", "", "1e99"]
    )
    @pytest.mark.parametrize("name", ["since", "until"])
    async def test_a_bad_datetime_is_422_naming_the_parameter(
        self, h: Harness, name: str, value: str
    ) -> None:
        assert_error(await sla(h, **{name: value}), 422, name)

    @pytest.mark.parametrize("name", ["since", "until"])
    async def test_a_datetime_without_a_zone_is_422(self, h: Harness, name: str) -> None:
        assert_error(await sla(h, **{name: "2026-01-05T09:00:00"}), 422, name)

    @pytest.mark.parametrize("name", ["since", "until"])
    @pytest.mark.parametrize(
        "value", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"], ids=["min", "max"]
    )
    async def test_a_datetime_outside_the_utc_calendar_is_422_not_500(
        self, h: Harness, name: str, value: str
    ) -> None:
        assert_error(await sla(h, **{name: value}), 422, name)

    async def test_the_first_and_last_utc_dates_are_accepted(self, h: Harness) -> None:
        await h.report()
        first, last = "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"
        assert (await summary(h, since=first, until=last))["reports"] == 1
        assert (await summary(h, since=last))["reports"] == 0
        assert (await summary(h, until=first))["reports"] == 0


class TestWhoMayRead:
    async def test_staff_and_admin_may_read(self, h: Harness) -> None:
        staff_id = await h.staff("Anna")
        assert (await sla(h, h.admin)).status_code == 200
        assert (await sla(h, await h.token(Role.STAFF, staff_id))).status_code == 200

    async def test_app_tokens_may_not(self, h: Harness) -> None:
        assert_error(await sla(h, h.app), 403)

    async def test_no_token_is_401(self, h: Harness) -> None:
        r = await sla(h, {})
        assert_error(r, 401)
        assert r.headers["www-authenticate"] == "Bearer"
