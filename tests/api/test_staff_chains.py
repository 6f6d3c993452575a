"""`/v1/staff` and `/v1/chains` (admin only), and which chain a new report follows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest

from routing.chain.models import Chain
from routing.staff.models import Staff
from routing.types import Role
from tests.harness import SMS, VOICE, Harness

ANNA: dict[str, Any] = {"name": "Anna", "phone": "06 12345678", "languages": ["nl", "en"]}


def assert_error(r: httpx.Response, status: int, field: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    error: dict[str, Any] = r.json()["error"]
    assert {"code", "message", "field"} <= set(error)
    assert error["message"]
    if field is not None:
        assert error["field"] == field, error
    return error


async def non_admins(h: Harness) -> list[dict[str, str]]:
    staff_id = await h.staff("Zoe")
    return [h.app, await h.token(Role.STAFF, staff_id)]


def chain_body(*steps: tuple[str, list[str], int], **extra: Any) -> dict[str, Any]:
    return {
        "name": "rota",
        "steps": [
            {"channel": channel, "targets": targets, "wait_seconds": wait}
            for channel, targets, wait in steps
        ],
        **extra,
    }


class TestStaff:
    async def test_create_normalises_the_phone_and_returns_the_member(self, h: Harness) -> None:
        r = await h.client.post("/v1/staff", json={**ANNA, "chat_id": "tg-42"}, headers=h.admin)

        assert r.status_code == 201, r.text
        body = r.json()
        assert isinstance(body["id"], str)
        assert body["id"]
        assert body["name"] == "Anna"
        assert body["phone"] == "+31612345678"
        assert body["languages"] == ["nl", "en"]
        assert body["chat_id"] == "tg-42"
        assert datetime.fromisoformat(body["created_at"]) == h.clock.now()

    @pytest.mark.parametrize("phone", ["+31 6 1234 5678", "0612345678", "+31612345678"])
    async def test_phone_formats_are_all_stored_as_e164(self, h: Harness, phone: str) -> None:
        r = await h.client.post("/v1/staff", json={**ANNA, "phone": phone}, headers=h.admin)
        assert r.status_code == 201, r.text
        assert r.json()["phone"] == "+31612345678"

    async def test_chat_id_is_optional(self, h: Harness) -> None:
        r = await h.client.post("/v1/staff", json=ANNA, headers=h.admin)
        assert r.status_code == 201, r.text
        assert r.json()["chat_id"] is None

    async def test_list_returns_every_member_in_creation_order(self, h: Harness) -> None:
        anna = await h.staff("Anna", languages=["en"])
        h.clock.advance(1)
        bram = await h.staff("Bram", "+31 6 8765 4321", chat_id="tg-bram")

        r = await h.client.get("/v1/staff", headers=h.admin)

        assert r.status_code == 200, r.text
        listed = r.json()
        assert [s["id"] for s in listed] == [anna, bram]
        assert listed[0]["languages"] == ["en"]
        assert listed[1]["phone"] == "+31687654321"
        assert listed[1]["chat_id"] == "tg-bram"

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"phone": "12345"}, "phone"),
            ({"phone": "not a phone"}, "phone"),
            ({"languages": ["de"]}, "languages.0"),
            ({"languages": ["nl", "fr"]}, "languages.1"),
            ({"languages": []}, "languages"),
            ({"languages": "nl"}, "languages"),
            ({"name": ""}, "name"),
            ({"name": "x" * 121}, "name"),
            ({"role": "admin"}, "role"),
        ],
    )
    async def test_invalid_staff_is_422_naming_the_field(
        self, h: Harness, change: dict[str, Any], field: str
    ) -> None:
        r = await h.client.post("/v1/staff", json={**ANNA, **change}, headers=h.admin)
        assert_error(r, 422, field)
        assert await h.count(Staff) == 0

    @pytest.mark.parametrize("missing", ["name", "phone"])
    async def test_missing_required_field_is_named(self, h: Harness, missing: str) -> None:
        body = {k: v for k, v in ANNA.items() if k != missing}
        assert_error(await h.client.post("/v1/staff", json=body, headers=h.admin), 422, missing)

    async def test_only_admins_may_create_or_list_staff(self, h: Harness) -> None:
        for headers in await non_admins(h):
            assert_error(await h.client.post("/v1/staff", json=ANNA, headers=headers), 403)
            assert_error(await h.client.get("/v1/staff", headers=headers), 403)
        assert await h.count(Staff) == 1  # only Zoe, created by the admin

    async def test_staff_endpoints_need_a_token(self, h: Harness) -> None:
        assert_error(await h.client.post("/v1/staff", json=ANNA), 401)
        assert_error(await h.client.get("/v1/staff"), 401)


class TestChains:
    async def test_create_returns_the_chain_as_given(self, h: Harness) -> None:
        anna, bram = await h.staff("Anna"), await h.staff("Bram")
        body = chain_body(
            ("voice", [anna], 30),
            ("sms", [anna, bram], 5),
            ("chat", [bram], 3600),
            categories=["fraud", "account_takeover"],
            repeat=2,
            last_resort={"channel": "sms", "targets": [bram]},
        )

        r = await h.client.post("/v1/chains", json=body, headers=h.admin)

        assert r.status_code == 201, r.text
        chain = r.json()
        assert isinstance(chain["id"], str)
        assert chain["id"]
        assert chain["name"] == "rota"
        assert chain["categories"] == ["fraud", "account_takeover"]
        assert chain["steps"] == [
            {"channel": "voice", "targets": [anna], "wait_seconds": 30},
            {"channel": "sms", "targets": [anna, bram], "wait_seconds": 5},
            {"channel": "chat", "targets": [bram], "wait_seconds": 3600},
        ]
        assert chain["repeat"] == 2
        assert chain["last_resort"] == {"channel": "sms", "targets": [bram]}

    async def test_defaults_no_categories_no_repeat_no_last_resort(self, h: Harness) -> None:
        anna = await h.staff("Anna")
        r = await h.client.post(
            "/v1/chains", json=chain_body(("voice", [anna], 30)), headers=h.admin
        )
        assert r.status_code == 201, r.text
        assert r.json()["categories"] == []
        assert r.json()["repeat"] == 0
        assert r.json()["last_resort"] is None

    async def test_list_returns_every_chain(self, h: Harness) -> None:
        await h.staff("Anna")
        first = await h.chain(("voice", ["Anna"], 30), name="first")
        h.clock.advance(1)
        second = await h.chain(("sms", ["Anna"], 60), categories=["fraud"], name="second")

        r = await h.client.get("/v1/chains", headers=h.admin)

        assert r.status_code == 200, r.text
        assert [c["id"] for c in r.json()] == [first["id"], second["id"]]
        assert r.json()[1]["categories"] == ["fraud"]

    async def test_unknown_staff_in_a_step_is_named_by_position(self, h: Harness) -> None:
        anna = await h.staff("Anna")
        unknown = "00000000-0000-4000-8000-000000000000"

        first = await h.client.post(
            "/v1/chains", json=chain_body(("voice", [unknown], 30)), headers=h.admin
        )
        later = await h.client.post(
            "/v1/chains",
            json=chain_body(("voice", [anna], 30), ("sms", [anna, unknown], 30)),
            headers=h.admin,
        )

        assert unknown in assert_error(first, 422, "steps.0.targets.0")["message"]
        assert_error(later, 422, "steps.1.targets.1")
        assert await h.count(Chain) == 0

    async def test_unknown_last_resort_staff_is_named(self, h: Harness) -> None:
        anna = await h.staff("Anna")
        body = chain_body(
            ("voice", [anna], 30), last_resort={"channel": "voice", "targets": ["nobody"]}
        )
        r = await h.client.post("/v1/chains", json=body, headers=h.admin)
        assert_error(r, 422, "last_resort.targets.0")
        assert await h.count(Chain) == 0

    @pytest.mark.parametrize(("wait", "status"), [(4, 422), (0, 422), (-5, 422), (5, 201)])
    async def test_wait_seconds_is_at_least_5(self, h: Harness, wait: int, status: int) -> None:
        anna = await h.staff("Anna")
        r = await h.client.post(
            "/v1/chains", json=chain_body(("voice", [anna], wait)), headers=h.admin
        )
        if status == 422:
            assert_error(r, 422, "steps.0.wait_seconds")
        else:
            assert r.status_code == 201, r.text
            assert r.json()["steps"][0]["wait_seconds"] == 5

    async def test_wait_seconds_of_a_later_step_is_named(self, h: Harness) -> None:
        anna = await h.staff("Anna")
        body = chain_body(("voice", [anna], 30), ("sms", [anna], 4))
        r = await h.client.post("/v1/chains", json=body, headers=h.admin)
        assert_error(r, 422, "steps.1.wait_seconds")

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"steps": []}, "steps"),
            ({"categories": ["theft"]}, "categories.0"),
            ({"categories": ["fraud", "nope"]}, "categories.1"),
            ({"repeat": -1}, "repeat"),
            ({"name": ""}, "name"),
            ({"owner": "me"}, "owner"),
        ],
    )
    async def test_invalid_chain_is_422_naming_the_field(
        self, h: Harness, change: dict[str, Any], field: str
    ) -> None:
        anna = await h.staff("Anna")
        body = {**chain_body(("voice", [anna], 30)), **change}
        r = await h.client.post("/v1/chains", json=body, headers=h.admin)
        assert_error(r, 422, field)
        assert await h.count(Chain) == 0

    @pytest.mark.parametrize(
        ("step", "field"),
        [
            ({"channel": "fax", "targets": ["ID"], "wait_seconds": 30}, "steps.0.channel"),
            ({"channel": "voice", "targets": [], "wait_seconds": 30}, "steps.0.targets"),
            (
                {"channel": "voice", "targets": ["ID"], "wait_seconds": "soon"},
                "steps.0.wait_seconds",
            ),
            ({"channel": "voice", "targets": ["ID"]}, "steps.0.wait_seconds"),
            ({"targets": ["ID"], "wait_seconds": 30}, "steps.0.channel"),
            ({"channel": "voice", "targets": ["ID"], "wait_seconds": 30, "x": 1}, "steps.0.x"),
        ],
    )
    async def test_invalid_step_is_422_naming_the_field(
        self, h: Harness, step: dict[str, Any], field: str
    ) -> None:
        anna = await h.staff("Anna")
        if "targets" in step:
            step = {**step, "targets": [anna if t == "ID" else t for t in step["targets"]]}
        body = {"name": "rota", "steps": [step]}
        r = await h.client.post("/v1/chains", json=body, headers=h.admin)
        assert_error(r, 422, field)

    async def test_only_admins_may_create_or_list_chains(self, h: Harness) -> None:
        anna = await h.staff("Anna")
        body = chain_body(("voice", [anna], 30))
        for headers in await non_admins(h):
            assert_error(await h.client.post("/v1/chains", json=body, headers=headers), 403)
            assert_error(await h.client.get("/v1/chains", headers=headers), 403)
        assert_error(await h.client.post("/v1/chains", json=body), 401)
        assert_error(await h.client.get("/v1/chains"), 401)
        assert await h.count(Chain) == 0


class TestWhichChainServesAReport:
    async def test_a_category_chain_serves_its_category_and_the_default_the_rest(
        self, h: Harness
    ) -> None:
        await h.staff("Anna")
        await h.staff("Bram")
        await h.chain(("voice", ["Anna"], 30), categories=["fraud"], name="fraud desk")
        await h.chain(("sms", ["Bram"], 30), name="everyone")

        fraud = await h.report(category="fraud")
        lost = await h.report(category="lost_card")
        await h.tick()

        h.expect(("Anna", VOICE), ("Bram", SMS))
        assert (await h.get(fraud["id"]))["escalation"]["chain"] == "fraud desk"
        assert (await h.get(lost["id"]))["escalation"]["chain"] == "everyone"

    async def test_the_newest_default_chain_serves(self, h: Harness) -> None:
        await h.staff("Anna")
        await h.staff("Bram")
        await h.chain(("voice", ["Anna"], 30), name="old rota")
        h.clock.advance(60)
        await h.chain(("voice", ["Bram"], 30), name="new rota")

        report = await h.report(category="other")
        await h.tick()

        h.expect(("Bram", VOICE))
        assert (await h.get(report["id"]))["escalation"]["chain"] == "new rota"

    async def test_the_default_chain_created_last_serves_even_at_the_same_instant(
        self, h: Harness
    ) -> None:
        await h.staff("Anna")
        names = [f"rota {i}" for i in range(1, 6)]
        for name in names:  # the clock does not move between them
            await h.chain(("voice", ["Anna"], 30), name=name)

        report = await h.report(category="other")

        assert (await h.get(report["id"]))["escalation"]["chain"] == "rota 5"
        listed = await h.client.get("/v1/chains", headers=h.admin)
        assert [c["name"] for c in listed.json()] == names

    async def test_a_category_chain_beats_a_newer_default(self, h: Harness) -> None:
        await h.staff("Anna")
        await h.staff("Bram")
        await h.chain(("voice", ["Anna"], 30), categories=["fraud", "lost_card"], name="cards")
        h.clock.advance(60)
        await h.chain(("voice", ["Bram"], 30), name="everyone")

        report = await h.report(category="lost_card")
        await h.tick()

        h.expect(("Anna", VOICE))
        assert (await h.get(report["id"]))["escalation"]["chain"] == "cards"

    async def test_a_category_without_its_own_chain_and_no_default_pages_nobody(
        self, h: Harness
    ) -> None:
        await h.staff("Anna")
        await h.chain(("voice", ["Anna"], 30), categories=["fraud"], name="fraud desk")

        report = await h.report(category="other")
        await h.tick()

        h.expect_none()
        seen = await h.get(report["id"])
        assert seen["escalation"]["chain"] is None
        assert "no_chain" in [e["type"] for e in seen["timeline"]]

    async def test_a_report_keeps_the_chain_it_started_with(self, h: Harness) -> None:
        await h.staff("Anna")
        await h.staff("Bram")
        await h.staff("Cara")
        await h.chain(("voice", ["Anna"], 30), ("sms", ["Bram"], 60), name="v1")
        report = await h.report()
        await h.tick()
        h.expect(("Anna", VOICE))

        h.clock.advance(1)
        await h.chain(("voice", ["Cara"], 30), ("sms", ["Cara"], 60), name="v2")
        await h.advance(29)

        h.expect(("Bram", SMS))
        assert (await h.get(report["id"]))["escalation"]["chain"] == "v1"
        newer = await h.report()
        await h.tick()
        h.expect(("Cara", VOICE))
        assert (await h.get(newer["id"]))["escalation"]["chain"] == "v2"
