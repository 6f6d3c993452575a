"""`/v1/schedules` (admin writes; staff and admin read), their overrides, and `/v1/oncall`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from routing.rota import service as rota_service
from routing.rota.models import Schedule, ScheduleOverride
from routing.types import Role
from tests.api.test_staff_chains import assert_error
from tests.harness import Harness


def t(iso: str) -> datetime:
    return datetime.fromisoformat(iso).astimezone(UTC)


def layer(members: list[str], **fields: Any) -> dict[str, Any]:
    return {
        "name": "nights",
        "members": members,
        "rotation": "daily",
        "handoff_time": "20:00",
        "start_date": "2026-03-27",
        **fields,
    }


async def make(h: Harness, name: str = "fraud-primary", **body: Any) -> dict[str, Any]:
    r = await h.client.post("/v1/schedules", json={"name": name, **body}, headers=h.admin)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def anna_and_bram(h: Harness) -> tuple[str, str]:
    return await h.staff("Anna"), await h.staff("Bram", "+31687654321")


async def oncall(
    h: Harness, headers: dict[str, str] | None = None, **params: str
) -> httpx.Response:
    return await h.client.get("/v1/oncall", params=params, headers=headers or h.admin)


class TestCreate:
    async def test_a_schedule_is_stored_in_the_configured_zone_by_default(self, h: Harness) -> None:
        anna, bram = await anna_and_bram(h)
        office = layer(
            [bram],
            name="office",
            handoff_time="09:00",
            active={"days": ["mon", "fri"], "from": "09:00", "to": "17:30"},
        )

        body = await make(h, layers=[layer([anna, bram]), office])

        assert body["time_zone"] == "Europe/Amsterdam"
        assert body["layers"][0] == layer([anna, bram]) | {"active": None}
        assert body["layers"][1]["active"] == {
            "days": ["mon", "fri"],
            "from": "09:00",
            "to": "17:30",
        }
        assert datetime.fromisoformat(body["created_at"]) == h.clock.now()
        stored = await h.client.get(f"/v1/schedules/{body['id']}", headers=h.admin)
        assert stored.json() == body

    async def test_a_schedule_may_name_its_own_zone(self, h: Harness) -> None:
        anna, _ = await anna_and_bram(h)
        body = await make(h, time_zone="America/New_York", layers=[layer([anna])])
        assert body["time_zone"] == "America/New_York"

    async def test_a_second_schedule_with_the_same_name_is_409(self, h: Harness) -> None:
        anna, _ = await anna_and_bram(h)
        await make(h, layers=[layer([anna])])

        r = await h.client.post(
            "/v1/schedules",
            json={"name": "fraud-primary", "layers": [layer([anna])]},
            headers=h.admin,
        )

        assert_error(r, 409, "name")
        assert await h.count(Schedule) == 1

    async def test_two_admins_saving_one_name_at_once_get_409_not_500(
        self, h: Harness, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        anna, _ = await anna_and_bram(h)
        await make(h, layers=[layer([anna])])

        async def too_late(*_: Any, **__: Any) -> None:
            return None  # the other admin's insert commits after this check

        monkeypatch.setattr(rota_service, "_check_name_free", too_late)
        r = await h.client.post(
            "/v1/schedules",
            json={"name": "fraud-primary", "layers": [layer([anna])]},
            headers=h.admin,
        )

        assert_error(r, 409, "name")
        assert await h.count(Schedule) == 1

    async def test_a_member_who_is_not_staff_is_422_naming_the_member(self, h: Harness) -> None:
        anna, _ = await anna_and_bram(h)
        body = {"name": "x", "layers": [layer([anna]), layer([anna, "nobody"], name="b")]}

        r = await h.client.post("/v1/schedules", json=body, headers=h.admin)

        assert_error(r, 422, "layers.1.members.1")
        assert await h.count(Schedule) == 0

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"time_zone": "Europe/Amsterdamm"}, "time_zone"),
            ({"time_zone": "../etc/passwd"}, "time_zone"),
            ({"layers": []}, "layers"),
            ({"colour": "red"}, "colour"),
            ({"name": ""}, "name"),
            ({"layers": [layer(["s"], handoff_time="24:00")]}, "layers.0.handoff_time"),
            ({"layers": [layer(["s"], handoff_time="9:00")]}, "layers.0.handoff_time"),
            ({"layers": [layer(["s"], rotation="monthly")]}, "layers.0.rotation"),
            ({"layers": [layer([])]}, "layers.0.members"),
            ({"layers": [layer(["s"], start_date="2026-02-30")]}, "layers.0.start_date"),
            ({"layers": [layer(["s"], active={"days": ["mon", "mo"]})]}, "layers.0.active.days.1"),
            ({"layers": [layer(["s"], active={"from": "8"})]}, "layers.0.active.from"),
            ({"layers": [layer(["s"], shift="x")]}, "layers.0.shift"),
            ({"layers": [layer(["s"]), layer(["s"])]}, "layers"),
        ],
    )
    async def test_bad_input_is_422_naming_the_field(
        self, h: Harness, change: dict[str, Any], field: str
    ) -> None:
        body = {"name": "fraud-primary", "layers": [layer(["s"])], **change}
        assert_error(await h.client.post("/v1/schedules", json=body, headers=h.admin), 422, field)
        assert await h.count(Schedule) == 0


class TestReadReplaceDelete:
    async def test_staff_may_read_but_only_admins_may_write(self, h: Harness) -> None:
        anna, _ = await anna_and_bram(h)
        schedule = await make(h, layers=[layer([anna])])
        path = f"/v1/schedules/{schedule['id']}"
        staff = await h.token(Role.STAFF, anna)

        assert (await h.client.get("/v1/schedules", headers=staff)).json() == [schedule]
        assert (await h.client.get(path, headers=staff)).status_code == 200
        assert (await h.client.get(f"{path}/overrides", headers=staff)).status_code == 200
        assert (await oncall(h, staff)).status_code == 200
        body = {"name": "x", "layers": [layer([anna])]}
        assert_error(await h.client.post("/v1/schedules", json=body, headers=staff), 403)
        assert_error(await h.client.put(path, json=body, headers=staff), 403)
        assert_error(await h.client.delete(path, headers=staff), 403)
        assert_error(await h.client.get("/v1/schedules", headers=h.app), 403)
        assert_error(await oncall(h, h.app), 403)
        assert_error(await h.client.get("/v1/schedules"), 401)

    @pytest.mark.parametrize("bad", ["nope", "a%00b", "0" * 5000])
    async def test_an_unknown_schedule_is_404(self, h: Harness, bad: str) -> None:
        assert_error(
            await h.client.get(f"/v1/schedules/{bad}", headers=h.admin), 404, "schedule_id"
        )

    async def test_put_replaces_name_zone_and_layers(self, h: Harness) -> None:
        anna, bram = await anna_and_bram(h)
        schedule = await make(h, time_zone="UTC", layers=[layer([anna])])
        h.clock.advance(60)

        r = await h.client.put(
            f"/v1/schedules/{schedule['id']}",
            json={"name": "fraud-backup", "layers": [layer([bram], rotation="weekly")]},
            headers=h.admin,
        )

        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["name"], body["time_zone"]) == ("fraud-backup", "Europe/Amsterdam")
        assert [(x["members"], x["rotation"]) for x in body["layers"]] == [([bram], "weekly")]
        assert datetime.fromisoformat(body["updated_at"]) == h.clock.now()
        assert body["created_at"] == schedule["created_at"]

    async def test_put_to_another_schedules_name_is_409(self, h: Harness) -> None:
        anna, _ = await anna_and_bram(h)
        await make(h, layers=[layer([anna])])
        other = await make(h, "fraud-backup", layers=[layer([anna])])

        r = await h.client.put(
            f"/v1/schedules/{other['id']}",
            json={"name": "fraud-primary", "layers": [layer([anna])]},
            headers=h.admin,
        )

        assert_error(r, 409, "name")

    async def test_delete_removes_the_schedule_and_its_overrides(self, h: Harness) -> None:
        anna, bram = await anna_and_bram(h)
        schedule = await make(h, layers=[layer([anna])])
        path = f"/v1/schedules/{schedule['id']}"
        override = {
            "kind": "add",
            "staff_id": bram,
            "starts_at": "2026-01-05T10:00:00Z",
            "ends_at": "2026-01-05T12:00:00Z",
        }
        await h.client.post(f"{path}/overrides", json=override, headers=h.admin)

        r = await h.client.delete(path, headers=h.admin)

        assert r.status_code == 204
        assert not r.content
        assert await h.count(Schedule) == 0
        assert await h.count(ScheduleOverride) == 0
        assert_error(await h.client.delete(path, headers=h.admin), 404, "schedule_id")

    async def test_a_schedule_a_serving_chain_pages_cannot_be_deleted(self, h: Harness) -> None:
        anna, _ = await anna_and_bram(h)
        schedule = await make(h, layers=[layer([anna])])
        chain = {
            "name": "fraud",
            "categories": ["fraud"],
            "steps": [{"channel": "voice", "schedules": [schedule["id"]], "wait_seconds": 60}],
        }
        assert (await h.client.post("/v1/chains", json=chain, headers=h.admin)).status_code == 201

        r = await h.client.delete(f"/v1/schedules/{schedule['id']}", headers=h.admin)

        assert_error(r, 409, "schedule_id")
        assert await h.count(Schedule) == 1
        # A newer fraud chain without the schedule takes over; then it may go.
        newer = {**chain, "steps": [{"channel": "voice", "targets": [anna], "wait_seconds": 60}]}
        h.clock.advance(1)
        await h.client.post("/v1/chains", json=newer, headers=h.admin)
        r = await h.client.delete(f"/v1/schedules/{schedule['id']}", headers=h.admin)
        assert r.status_code == 204, r.text


class TestOverrides:
    async def setup(self, h: Harness) -> tuple[str, str, str]:
        anna, bram = await anna_and_bram(h)
        schedule = await make(h, layers=[layer([anna], start_date="2026-01-01")])
        return f"/v1/schedules/{schedule['id']}/overrides", anna, bram

    async def test_create_list_and_delete(self, h: Harness) -> None:
        path, anna, bram = await self.setup(h)
        now = h.clock.now()
        soon = {
            "kind": "replace",
            "staff_id": bram,
            "replaces_staff_id": anna,
            "starts_at": (now + timedelta(hours=1)).isoformat(),
            "ends_at": "2026-01-05T14:00:00+01:00",
        }
        later = {
            "kind": "add",
            "staff_id": bram,
            "starts_at": (now + timedelta(days=2)).isoformat(),
            "ends_at": (now + timedelta(days=3)).isoformat(),
        }

        first = await h.client.post(path, json=soon, headers=h.admin)
        second = await h.client.post(path, json=later, headers=h.admin)

        assert first.status_code == second.status_code == 201, first.text + second.text
        created = first.json()
        assert created["kind"] == "replace"
        assert created["replaces_staff_id"] == anna
        assert datetime.fromisoformat(created["ends_at"]) == t("2026-01-05T13:00:00Z")
        listed = (await h.client.get(path, headers=h.admin)).json()
        assert [o["id"] for o in listed] == [created["id"], second.json()["id"]]

        h.clock.set(t("2026-01-05T13:00:00Z"))  # the first is over: no longer listed
        assert [o["id"] for o in (await h.client.get(path, headers=h.admin)).json()] == [
            second.json()["id"]
        ]

        gone = await h.client.delete(f"{path}/{second.json()['id']}", headers=h.admin)
        assert gone.status_code == 204
        assert (await h.client.get(path, headers=h.admin)).json() == []
        again = await h.client.delete(f"{path}/{second.json()['id']}", headers=h.admin)
        assert_error(again, 404, "override_id")

    async def test_an_override_of_another_schedule_is_not_found_here(self, h: Harness) -> None:
        path, anna, bram = await self.setup(h)
        other = await make(h, "other", layers=[layer([bram])])
        body = {
            "kind": "remove",
            "staff_id": anna,
            "starts_at": "2026-01-05T10:00:00Z",
            "ends_at": "2026-01-05T12:00:00Z",
        }
        override = (await h.client.post(path, json=body, headers=h.admin)).json()

        r = await h.client.delete(
            f"/v1/schedules/{other['id']}/overrides/{override['id']}", headers=h.admin
        )

        assert_error(r, 404, "override_id")
        assert await h.count(ScheduleOverride) == 1

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"kind": "swap"}, "kind"),
            ({"replaces_staff_id": None}, "replaces_staff_id"),
            ({"kind": "add"}, "replaces_staff_id"),
            ({"staff_id": "ANNA"}, "replaces_staff_id"),  # replaced by themselves
            ({"staff_id": "nobody"}, "staff_id"),
            ({"replaces_staff_id": "nobody"}, "replaces_staff_id"),
            ({"starts_at": "2026-01-05T10:00:00"}, "starts_at"),
            ({"ends_at": "tomorrow"}, "ends_at"),
            ({"ends_at": "2026-01-05T10:00:00Z"}, "ends_at"),  # not after the start
            ({"ends_at": "2027-01-07T10:00:00Z"}, "ends_at"),  # longer than a year
            ({"starts_at": "2026-01-01T10:00:00Z", "ends_at": "2026-01-05T08:59:59Z"}, "ends_at"),
            ({"note": "x"}, "note"),
        ],
    )
    async def test_bad_override_is_422_naming_the_field(
        self, h: Harness, change: dict[str, Any], field: str
    ) -> None:
        path, anna, bram = await self.setup(h)
        body = {
            "kind": "replace",
            "staff_id": bram,
            "replaces_staff_id": anna,
            "starts_at": "2026-01-05T10:00:00Z",
            "ends_at": "2026-01-05T12:00:00Z",
            **change,
        }
        if body["staff_id"] == "ANNA":
            body["staff_id"] = anna

        assert_error(await h.client.post(path, json=body, headers=h.admin), 422, field)
        assert await h.count(ScheduleOverride) == 0

    async def test_overrides_of_an_unknown_schedule_are_404(self, h: Harness) -> None:
        _, anna, _ = await self.setup(h)
        body = {
            "kind": "remove",
            "staff_id": anna,
            "starts_at": "2026-01-05T10:00:00Z",
            "ends_at": "2026-01-05T12:00:00Z",
        }
        r = await h.client.post("/v1/schedules/nope/overrides", json=body, headers=h.admin)
        assert_error(r, 404, "schedule_id")
        assert_error(await h.client.get("/v1/schedules/nope/overrides", headers=h.admin), 404)


class TestOnCall:
    async def test_default_is_now_for_every_schedule(self, h: Harness) -> None:
        anna, bram = await anna_and_bram(h)
        primary = await make(h, layers=[layer([anna, bram], start_date="2026-01-01")])
        nobody = await make(h, "later", layers=[layer([anna], start_date="2027-01-01")])

        body = (await oncall(h)).json()

        # 2026-01-05 10:00 Amsterdam: the shift of Jan 4 (day 3, Bram) until 20:00 local.
        assert datetime.fromisoformat(body["at"]) == h.clock.now()
        by_id = {s["id"]: s for s in body["schedules"]}
        assert by_id[primary["id"]] == {
            "id": primary["id"],
            "name": "fraud-primary",
            "time_zone": "Europe/Amsterdam",
            "on_call": [{"id": bram, "name": "Bram"}],
            "until": "2026-01-05T19:00:00Z",
        }
        assert by_id[nobody["id"]]["on_call"] == []
        assert by_id[nobody["id"]]["until"] is None

    @pytest.mark.parametrize(
        ("start_date", "at", "who", "until", "hours"),
        [
            ("2026-03-27", "2026-03-28T21:00:00+01:00", "Bram", "2026-03-29T20:00:00+02:00", 23),
            ("2026-10-24", "2026-10-24T21:00:00+02:00", "Anna", "2026-10-25T20:00:00+01:00", 25),
        ],
    )
    async def test_a_shift_over_a_clock_change_ends_at_20_local(
        self, h: Harness, start_date: str, at: str, who: str, until: str, hours: int
    ) -> None:
        anna, bram = await anna_and_bram(h)
        await make(h, layers=[layer([anna, bram], start_date=start_date)])
        await make(h, "other", layers=[layer([bram], start_date=start_date)])

        body = (await oncall(h, at=at, schedule="fraud-primary")).json()

        [schedule] = body["schedules"]
        assert [s["name"] for s in schedule["on_call"]] == [who]
        assert t(schedule["until"]) == t(until)
        shift_started = t(at) - timedelta(hours=1)  # the 20:00 hand-off before `at`
        assert t(schedule["until"]) - shift_started == timedelta(hours=hours)

    async def test_an_override_shows_and_ends_the_shift_early(self, h: Harness) -> None:
        anna, bram = await anna_and_bram(h)
        schedule = await make(h, layers=[layer([anna], start_date="2026-01-01")])
        override = {
            "kind": "replace",
            "staff_id": bram,
            "replaces_staff_id": anna,
            "starts_at": "2026-01-05T09:00:00Z",
            "ends_at": "2026-01-05T11:30:00Z",
        }
        path = f"/v1/schedules/{schedule['id']}/overrides"
        assert (await h.client.post(path, json=override, headers=h.admin)).status_code == 201

        [now] = (await oncall(h, schedule=schedule["id"])).json()["schedules"]
        [after] = (await oncall(h, at="2026-01-05T11:30:00Z")).json()["schedules"]

        assert now["on_call"] == [{"id": bram, "name": "Bram"}]
        assert now["until"] == "2026-01-05T11:30:00Z"
        assert after["on_call"] == [{"id": anna, "name": "Anna"}]

    async def test_an_unencoded_plus_in_at_still_means_an_offset(self, h: Harness) -> None:
        anna, _ = await anna_and_bram(h)
        await make(h, layers=[layer([anna])])
        r = await h.client.get("/v1/oncall?at=2026-03-29T12:00:00+02:00", headers=h.admin)
        assert r.status_code == 200, r.text
        assert r.json()["at"] == "2026-03-29T10:00:00Z"

    @pytest.mark.parametrize(
        "at", ["yesterday", "2026-03-29T12:00:00", "2026-03-29", "", "0001-01-01T00:00:00+01:00"]
    )
    async def test_a_bad_at_is_422_naming_at(self, h: Harness, at: str) -> None:
        assert_error(await oncall(h, at=at), 422, "at")

    async def test_an_unknown_schedule_is_404_naming_schedule(self, h: Harness) -> None:
        assert_error(await oncall(h, schedule="nope"), 404, "schedule")
        assert_error(await oncall(h, schedule="a\x00b"), 404, "schedule")


class TestOnCallForTheEngine:
    async def test_on_call_answers_every_id_in_at_most_two_queries(self, h: Harness) -> None:
        anna, bram = await anna_and_bram(h)
        first = await make(h, layers=[layer([anna, bram], start_date="2026-01-01")])
        second = await make(h, "second", layers=[layer([bram], start_date="2026-01-01")])
        override = {
            "kind": "add",
            "staff_id": anna,
            "starts_at": "2026-01-05T08:00:00Z",
            "ends_at": "2026-01-05T10:00:00Z",
        }
        await h.client.post(
            f"/v1/schedules/{second['id']}/overrides", json=override, headers=h.admin
        )
        statements: list[str] = []

        def count(*args: Any) -> None:
            statements.append(str(args[2]))

        engine = h.container.db_engine.sync_engine
        async with h.container.db() as session:
            event.listen(engine, "before_cursor_execute", count)
            try:
                found = await rota_service.on_call(
                    session,
                    [
                        first["id"],
                        second["id"],
                        "not-an-id",
                        "0" * 8 + "-0000-0000-0000-" + "0" * 12,
                    ],
                    h.clock.now(),
                )
            finally:
                event.remove(engine, "before_cursor_execute", count)

        assert found == {
            first["id"]: [bram],
            second["id"]: [bram, anna],
            "not-an-id": [],
            "00000000-0000-0000-0000-000000000000": [],
        }
        assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) <= 2
