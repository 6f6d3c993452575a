"""`GET /v1/reports/{id}`, `POST /v1/reports/{id}/ack` and `POST /v1/reports/{id}/resolve`."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from routing.types import Role
from tests.harness import SMS, VOICE, Harness, types

UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


def assert_error(r: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    error: dict[str, Any] = r.json()["error"]
    assert {"code", "message", "field"} <= set(error)
    assert error["message"]
    if code is not None:
        assert error["code"] == code, error
    return error


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def ack(h: Harness, report_id: str, headers: dict[str, str]) -> httpx.Response:
    return await h.client.post(f"/v1/reports/{report_id}/ack", headers=headers)


async def resolve(h: Harness, report_id: str, name: str) -> httpx.Response:
    return await h.client.post(f"/v1/reports/{report_id}/resolve", headers=h.as_staff(name))


async def anna_and_bram(h: Harness) -> dict[str, str]:
    """Two staff members and no chain: reports are stored but nobody is paged."""
    return {"Anna": await h.staff("Anna"), "Bram": await h.staff("Bram")}


class TestRead:
    async def test_staff_and_admin_read_the_full_view(self, h: Harness) -> None:
        await anna_and_bram(h)
        created = await h.report(category="lost_card", channel="web", customer_ref="C-1")

        for headers in (h.admin, h.as_staff("Anna")):
            r = await h.client.get(f"/v1/reports/{created['id']}", headers=headers)
            assert r.status_code == 200, r.text
            seen = r.json()
            assert seen["id"] == created["id"]
            assert seen["reference"] == created["reference"]
            assert seen["status"] == "open"
            assert seen["category"] == "lost_card"
            assert seen["channel"] == "web"
            assert seen["received_at"] == created["received_at"]
            assert seen["deadline_at"] == created["deadline_at"]
            assert seen["acknowledged_at"] is None
            assert seen["acknowledged_by"] is None
            assert seen["sla"] == {"met": None, "time_to_ack_seconds": None}

    async def test_timeline_lists_what_happened_with_times(self, h: Harness) -> None:
        created = await h.report()

        seen = await h.get(created["id"])

        assert types(seen) == ["received", "no_chain"]
        for entry in seen["timeline"]:
            assert {"at", "type", "detail"} <= set(entry)
            assert isinstance(entry["detail"], str)
            assert entry["detail"]
            assert at(entry["at"]) == at(created["received_at"])

    async def test_the_app_that_reported_may_read_its_report(self, h: Harness) -> None:
        created = await h.report()
        r = await h.client.get(f"/v1/reports/{created['id']}", headers=h.app)
        assert r.status_code == 200
        assert r.json()["id"] == created["id"]

    async def test_another_app_token_gets_404_as_if_it_did_not_exist(self, h: Harness) -> None:
        created = await h.report()
        other_app = await h.token(Role.APP)

        theirs = await h.client.get(f"/v1/reports/{created['id']}", headers=other_app)
        unknown = await h.client.get(f"/v1/reports/{UNKNOWN_ID}", headers=other_app)

        assert_error(theirs, 404, "not_found")
        assert_error(unknown, 404, "not_found")
        assert theirs.json()["error"]["message"] == unknown.json()["error"]["message"]

    @pytest.mark.parametrize("report_id", [UNKNOWN_ID, "nope", "x" * 300])
    async def test_unknown_id_is_404(self, h: Harness, report_id: str) -> None:
        r = await h.client.get(f"/v1/reports/{report_id}", headers=h.admin)
        assert_error(r, 404, "not_found")

    async def test_reading_needs_a_token(self, h: Harness) -> None:
        created = await h.report()
        r = await h.client.get(f"/v1/reports/{created['id']}")
        assert_error(r, 401)
        assert r.headers["www-authenticate"] == "Bearer"

    async def test_after_ack_the_view_names_who_and_how_fast(self, h: Harness) -> None:
        ids = await anna_and_bram(h)
        created = await h.report()
        h.clock.advance(42)
        await h.ack(created["id"], "Anna")

        seen = await h.get(created["id"])

        assert seen["status"] == "acknowledged"
        assert seen["acknowledged_by"] == {"id": ids["Anna"], "name": "Anna"}
        assert at(seen["acknowledged_at"]) == at(created["received_at"]) + timedelta(seconds=42)
        assert seen["sla"] == {"met": True, "time_to_ack_seconds": 42.0}
        acked = next(e for e in seen["timeline"] if e["type"] == "acknowledged")
        assert "Anna" in acked["detail"]
        assert at(acked["at"]) == at(seen["acknowledged_at"])


class TestAck:
    async def test_first_ack_wins(self, h: Harness) -> None:
        ids = await anna_and_bram(h)
        created = await h.report()
        h.clock.advance(12)

        r = await h.ack(created["id"], "Anna")

        assert r.status_code == 200, r.text
        body = r.json()
        assert body["status"] == "acknowledged"
        assert body["acknowledged_by"] == {"id": ids["Anna"], "name": "Anna"}
        assert at(body["acknowledged_at"]) == h.clock.now()
        assert body["sla"] == {"met": True, "time_to_ack_seconds": 12.0}

    async def test_same_staff_again_is_200_and_changes_nothing(self, h: Harness) -> None:
        await anna_and_bram(h)
        created = await h.report()
        first = await h.ack(created["id"], "Anna")
        h.clock.advance(30)

        again = await h.ack(created["id"], "Anna")

        assert again.status_code == 200, again.text
        assert again.json()["acknowledged_at"] == first.json()["acknowledged_at"]
        assert again.json()["acknowledged_by"]["name"] == "Anna"
        assert types(again.json()).count("acknowledged") == 1

    async def test_anyone_else_gets_409_naming_the_holder(self, h: Harness) -> None:
        ids = await anna_and_bram(h)
        created = await h.report()
        await h.ack(created["id"], "Anna")

        r = await h.ack(created["id"], "Bram")

        error = assert_error(r, 409, "already_acknowledged")
        assert error["acknowledged_by"]["name"] == "Anna"
        assert error["acknowledged_by"]["id"] == ids["Anna"]
        assert "Anna" in error["message"]
        seen = await h.get(created["id"])
        assert seen["acknowledged_by"]["name"] == "Anna"
        assert types(seen).count("acknowledged") == 1

    async def test_simultaneous_acks_have_exactly_one_winner(self, h: Harness) -> None:
        names = ["Anna", "Bram", "Cara", "Daan"]
        for name in names:
            await h.staff(name)
        created = await h.report()

        responses = await asyncio.gather(*(h.ack(created["id"], n) for n in names))

        statuses = sorted(r.status_code for r in responses)
        assert statuses == [200, 409, 409, 409], [r.text for r in responses]
        winner = names[[r.status_code for r in responses].index(200)]
        for r in responses:
            if r.status_code == 409:
                assert r.json()["error"]["acknowledged_by"]["name"] == winner
        seen = await h.get(created["id"])
        assert seen["acknowledged_by"]["name"] == winner
        assert types(seen).count("acknowledged") == 1

    async def test_ack_stops_paging(self, h: Harness) -> None:
        await anna_and_bram(h)
        await h.chain(("voice", ["Anna"], 30), ("sms", ["Bram"], 60), repeat=3)
        created = await h.report()
        await h.tick()
        h.expect(("Anna", VOICE))
        await h.advance(30)
        h.expect(("Bram", SMS))

        assert (await h.ack(created["id"], "Bram")).status_code == 200

        await h.tick()
        h.expect_accepted_text(created, by="Bram")
        await h.advance(3600)
        h.expect_none()

    @pytest.mark.parametrize("role", [Role.APP, Role.ADMIN])
    async def test_app_and_admin_tokens_may_not_ack(self, h: Harness, role: Role) -> None:
        created = await h.report()
        r = await ack(h, created["id"], await h.token(role))
        assert_error(r, 403, "forbidden")
        assert (await h.get(created["id"]))["status"] == "open"

    @pytest.mark.parametrize(
        "headers",
        [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic YW5uYTpwdw=="}],
        ids=["missing", "invalid", "basic"],
    )
    async def test_ack_without_a_valid_token_is_401(
        self, h: Harness, headers: dict[str, str]
    ) -> None:
        created = await h.report()
        r = await ack(h, created["id"], headers)
        assert_error(r, 401, "unauthorized")
        assert r.headers["www-authenticate"] == "Bearer"

    async def test_ack_of_an_unknown_report_is_404(self, h: Harness) -> None:
        await anna_and_bram(h)
        assert_error(await h.ack(UNKNOWN_ID, "Anna"), 404, "not_found")

    async def test_after_the_deadline_an_ack_still_wins_but_misses(self, h: Harness) -> None:
        await anna_and_bram(h)
        created = await h.report()
        h.clock.advance(601)

        r = await h.ack(created["id"], "Anna")

        assert r.status_code == 200
        assert r.json()["status"] == "acknowledged"
        assert r.json()["sla"] == {"met": False, "time_to_ack_seconds": 601.0}


class TestResolve:
    async def test_resolving_an_acknowledged_report(self, h: Harness) -> None:
        ids = await anna_and_bram(h)
        created = await h.report()
        h.clock.advance(20)
        await h.ack(created["id"], "Anna")
        h.clock.advance(100)

        r = await resolve(h, created["id"], "Anna")

        assert r.status_code == 200, r.text
        body = r.json()
        assert body["status"] == "resolved"
        assert body["resolved_by"] == {"id": ids["Anna"], "name": "Anna"}
        assert at(body["resolved_at"]) == h.clock.now()
        assert body["acknowledged_by"]["name"] == "Anna"
        assert body["sla"] == {"met": True, "time_to_ack_seconds": 20.0}
        assert types(body)[-1] == "resolved"
        assert (await h.get(created["id"]))["status"] == "resolved"

    async def test_resolving_an_unacknowledged_report_acknowledges_it_for_the_resolver(
        self, h: Harness
    ) -> None:
        ids = await anna_and_bram(h)
        created = await h.report()
        h.clock.advance(75)

        r = await resolve(h, created["id"], "Bram")

        body = r.json()
        assert r.status_code == 200, r.text
        assert body["status"] == "resolved"
        assert body["acknowledged_by"] == {"id": ids["Bram"], "name": "Bram"}
        assert body["resolved_by"] == {"id": ids["Bram"], "name": "Bram"}
        assert at(body["acknowledged_at"]) == h.clock.now()
        assert body["sla"] == {"met": True, "time_to_ack_seconds": 75.0}
        assert types(body)[-2:] == ["acknowledged", "resolved"]

    async def test_a_colleague_may_resolve_but_the_acknowledger_stays(self, h: Harness) -> None:
        await anna_and_bram(h)
        created = await h.report()
        await h.ack(created["id"], "Anna")

        r = await resolve(h, created["id"], "Bram")

        assert r.status_code == 200, r.text
        assert r.json()["status"] == "resolved"
        assert r.json()["acknowledged_by"]["name"] == "Anna"
        assert r.json()["resolved_by"]["name"] == "Bram"

    async def test_resolving_twice_is_harmless(self, h: Harness) -> None:
        await anna_and_bram(h)
        created = await h.report()
        first = await resolve(h, created["id"], "Anna")
        h.clock.advance(60)

        again = await resolve(h, created["id"], "Anna")

        assert again.status_code == 200
        assert again.json()["status"] == "resolved"
        assert again.json()["resolved_at"] == first.json()["resolved_at"]
        assert types(again.json()).count("resolved") == 1

    async def test_a_resolved_report_is_still_held_by_its_acknowledger(self, h: Harness) -> None:
        await anna_and_bram(h)
        created = await h.report()
        await resolve(h, created["id"], "Anna")

        assert (await h.ack(created["id"], "Anna")).status_code == 200
        r = await h.ack(created["id"], "Bram")
        assert assert_error(r, 409, "already_acknowledged")["acknowledged_by"]["name"] == "Anna"
        assert (await h.get(created["id"]))["status"] == "resolved"

    async def test_resolve_stops_paging(self, h: Harness) -> None:
        await anna_and_bram(h)
        await h.chain(("voice", ["Anna"], 30), ("sms", ["Bram"], 60), repeat=3)
        created = await h.report()
        await h.tick()
        h.expect(("Anna", VOICE))

        assert (await resolve(h, created["id"], "Anna")).status_code == 200

        await h.advance(3600)  # no more pages, and no "Anna calls you now": it is settled
        h.expect_none()

    @pytest.mark.parametrize("role", [Role.APP, Role.ADMIN])
    async def test_app_and_admin_tokens_may_not_resolve(self, h: Harness, role: Role) -> None:
        created = await h.report()
        r = await h.client.post(f"/v1/reports/{created['id']}/resolve", headers=await h.token(role))
        assert_error(r, 403, "forbidden")
        assert (await h.get(created["id"]))["status"] == "open"

    async def test_resolve_needs_a_token(self, h: Harness) -> None:
        created = await h.report()
        r = await h.client.post(f"/v1/reports/{created['id']}/resolve")
        assert_error(r, 401, "unauthorized")

    async def test_resolve_of_an_unknown_report_is_404(self, h: Harness) -> None:
        await anna_and_bram(h)
        assert_error(await resolve(h, UNKNOWN_ID, "Anna"), 404, "not_found")
