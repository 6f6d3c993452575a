"""`GET /v1/readiness`: what would let the promise break before any report arrives, for the chains
serving new reports over the next 7 days. The fake clock starts on Monday 2026-01-05 09:00 UTC
(10:00 in Amsterdam)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import update

from routing.staff.models import Staff
from routing.types import Role
from tests.api.test_staff_chains import assert_error
from tests.harness import Harness


def t(iso: str) -> datetime:
    return datetime.fromisoformat(iso).astimezone(UTC)


async def verify(h: Harness, *names: str, stopped: bool = False) -> None:
    """Mark staff as having verified their phone (or as having texted STOP)."""
    column = "sms_stopped_at" if stopped else "phone_verified_at"
    async with h.container.db.begin() as session:
        await session.execute(
            update(Staff)
            .where(Staff.id.in_([h.names[n] for n in names]))
            .values({column: h.clock.now()})
        )


async def schedule(h: Harness, name: str, members: list[str], **layer: Any) -> str:
    body = {
        "name": name,
        "layers": [
            {
                "name": "days",
                "members": [h.names[m] for m in members],
                "rotation": "daily",
                "handoff_time": "08:00",
                "start_date": "2026-01-01",
                **layer,
            }
        ],
    }
    r = await h.client.post("/v1/schedules", json=body, headers=h.admin)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def chain(h: Harness, name: str, *steps: dict[str, Any], categories: list[str]) -> str:
    body = {"name": name, "categories": categories, "steps": list(steps)}
    r = await h.client.post("/v1/chains", json=body, headers=h.admin)
    assert r.status_code == 201, r.text
    h.clock.advance(1)  # the newest chain of a category serves it
    return str(r.json()["id"])


def step(channel: str = "voice", **targets: list[str]) -> dict[str, Any]:
    return {"channel": channel, "wait_seconds": 60, **targets}


async def readiness(h: Harness) -> dict[str, Any]:
    r = await h.client.get("/v1/readiness", headers=h.admin)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_all_clear_when_every_chain_can_always_page_someone(h: Harness) -> None:
    await h.staff("Anna")
    await verify(h, "Anna")
    await chain(h, "default", step(targets=[h.names["Anna"]]), categories=[])

    body = await readiness(h)

    assert body == {
        "ok": True,
        "checked_at": h.clock.now().isoformat().replace("+00:00", "Z"),
        "coverage_gaps": [],
        "staff_unverified": [],
        "staff_sms_stopped": [],
        "unreachable_chains": [],
    }


async def test_the_hours_a_schedule_leaves_uncovered_are_a_gap(h: Harness) -> None:
    await h.staff("Anna")
    await verify(h, "Anna")
    days = await schedule(h, "fraud-days", ["Anna"], active={"from": "08:00", "to": "20:00"})
    fraud = await chain(h, "fraud", step(schedules=[days]), categories=["fraud"])

    body = await readiness(h)

    assert body["ok"] is False
    gaps = body["coverage_gaps"]
    assert len(gaps) == 7  # every night of the coming week
    assert gaps[0] == {
        "chain": {"id": fraud, "name": "fraud"},
        "from": "2026-01-05T19:00:00Z",  # 20:00 in Amsterdam
        "to": "2026-01-06T07:00:00Z",  # 08:00
    }
    assert {(t(g["to"]) - t(g["from"])) for g in gaps} == {timedelta(hours=12)}
    assert body["unreachable_chains"] == []


async def test_an_override_filling_a_night_closes_that_gap(h: Harness) -> None:
    await h.staff("Anna")
    await h.staff("Bram", "+31687654321")
    days = await schedule(h, "fraud-days", ["Anna"], active={"from": "08:00", "to": "20:00"})
    await chain(h, "fraud", step(schedules=[days]), categories=["fraud"])
    night = {
        "kind": "add",
        "staff_id": h.names["Bram"],
        "starts_at": "2026-01-05T19:00:00Z",
        "ends_at": "2026-01-06T07:00:00Z",
    }
    r = await h.client.post(f"/v1/schedules/{days}/overrides", json=night, headers=h.admin)
    assert r.status_code == 201, r.text

    gaps = (await readiness(h))["coverage_gaps"]

    assert len(gaps) == 6
    assert gaps[0]["from"] == "2026-01-06T19:00:00Z"


async def test_a_fixed_target_in_any_step_means_no_gap(h: Harness) -> None:
    await h.staff("Anna")
    days = await schedule(h, "fraud-days", ["Anna"], active={"from": "08:00", "to": "20:00"})
    await chain(
        h,
        "fraud",
        step(schedules=[days]),
        step("sms", targets=[h.names["Anna"]]),
        categories=["fraud"],
    )
    assert (await readiness(h))["coverage_gaps"] == []


async def test_only_chains_serving_new_reports_are_checked(h: Harness) -> None:
    await h.staff("Anna")
    days = await schedule(h, "fraud-days", ["Anna"], active={"from": "08:00", "to": "20:00"})
    await chain(h, "fraud v1", step("chat", schedules=[days]), categories=["fraud"])
    await chain(h, "fraud v2", step(targets=[h.names["Anna"]]), categories=["fraud"])

    body = await readiness(h)

    assert body["coverage_gaps"] == []
    assert body["unreachable_chains"] == []


async def test_unverified_and_stop_staff_are_listed(h: Harness) -> None:
    await h.staff("Anna")
    await h.staff("Bram", "+31687654321")
    await h.staff("Chris", "+31611112222")
    await verify(h, "Anna", "Bram")
    await verify(h, "Bram", stopped=True)

    body = await readiness(h)

    assert body["ok"] is False
    assert body["staff_unverified"] == [{"id": h.names["Chris"], "name": "Chris"}]
    assert body["staff_sms_stopped"] == [{"id": h.names["Bram"], "name": "Bram"}]


async def test_a_chain_whose_every_target_is_unreachable_is_listed(h: Harness) -> None:
    await h.staff("Anna")  # no chat id
    await h.staff("Bram", "+31687654321", chat_id="U-BRAM")
    await verify(h, "Anna", "Bram")
    await verify(h, "Bram", stopped=True)
    bram_nights = await schedule(h, "bram", ["Bram"])
    lost = await chain(
        h,
        "lost cards",
        step("chat", targets=[h.names["Anna"]]),
        step("sms", schedules=[bram_nights]),
        categories=["lost_card"],
    )
    await chain(
        h,
        "fraud",
        step("sms", targets=[h.names["Bram"]]),
        step("chat", schedules=[bram_nights]),  # Bram has a chat id: reachable
        categories=["fraud"],
    )

    body = await readiness(h)

    [unreachable] = body["unreachable_chains"]
    assert (unreachable["id"], unreachable["name"]) == (lost, "lost cards")
    assert "Anna: no chat id" in unreachable["reason"]
    assert "Bram: SMS turned off (STOP)" in unreachable["reason"]
    assert body["ok"] is False


async def test_staff_and_admins_may_read_readiness(h: Harness) -> None:
    anna = await h.staff("Anna")
    staff = await h.token(Role.STAFF, anna)
    assert (await h.client.get("/v1/readiness", headers=staff)).status_code == 200
    assert_error(await h.client.get("/v1/readiness", headers=h.app), 403)
    assert_error(await h.client.get("/v1/readiness"), 401)
