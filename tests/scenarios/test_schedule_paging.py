"""Chain steps that page "whoever is on call in a schedule": resolved when the step fires."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.harness import SMS, VOICE, Harness


async def schedule(h: Harness, name: str, members: list[str], **layer: Any) -> str:
    body = {
        "name": name,
        "layers": [
            {
                "name": "daily",
                "members": [h.names[m] for m in members],
                "rotation": "daily",
                "handoff_time": "10:00",  # 09:00 UTC in winter
                "start_date": "2026-01-01",
                **layer,
            }
        ],
    }
    r = await h.client.post("/v1/schedules", json=body, headers=h.admin)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def schedule_chain(h: Harness, *steps: dict[str, Any], **extra: Any) -> None:
    body = {"name": "rota", "steps": list(steps), **extra}
    r = await h.client.post("/v1/chains", json=body, headers=h.admin)
    assert r.status_code == 201, r.text


async def test_a_schedule_step_pages_whoever_is_on_call_when_it_fires(h: Harness) -> None:
    # Hand-off at 10:00 local (09:00 UTC). Before it on 2026-01-05 the shift is the one that
    # began on 2026-01-04, day 3 since the start: 3 % 3 → Anna. From 09:00 UTC day 4 → Bram.
    for name in ("Anna", "Bram", "Carl", "Dirk"):
        await h.staff(name)
    await schedule(h, "fraud-primary", ["Anna", "Bram", "Carl"])
    h.clock.set(h.clock.now() - timedelta(seconds=30))  # 08:59:30 UTC: Anna on call
    await schedule_chain(
        h,
        {"channel": "sms", "schedules": ["fraud-primary"], "wait_seconds": 60},
        {
            "channel": "sms",
            "schedules": ["fraud-primary"],
            "targets": [h.names["Dirk"]],
            "wait_seconds": 60,
        },
    )
    await h.report()
    await h.tick()
    h.expect(("Anna", SMS))
    await h.advance(60)  # 09:00:30 UTC: the hand-off to Bram happened before step 2 fired
    h.expect(("Dirk", SMS), ("Bram", SMS))


async def test_an_override_replaces_the_person_on_call(h: Harness) -> None:
    for name in ("Anna", "Bram", "Carl"):
        await h.staff(name)
    schedule_id = await schedule(h, "fraud-primary", ["Anna", "Bram", "Carl"])
    now = h.clock.now()  # 09:00 UTC: Bram's shift begins
    r = await h.client.post(
        f"/v1/schedules/{schedule_id}/overrides",
        json={
            "kind": "replace",
            "staff_id": h.names["Anna"],
            "replaces_staff_id": h.names["Bram"],
            "starts_at": now.isoformat(),
            "ends_at": (now + timedelta(hours=2)).isoformat(),
        },
        headers=h.admin,
    )
    assert r.status_code == 201, r.text
    await schedule_chain(h, {"channel": "voice", "schedules": [schedule_id], "wait_seconds": 60})
    await h.report()
    await h.tick()
    h.expect(("Anna", VOICE))


async def test_nobody_on_call_moves_on_at_once(h: Harness) -> None:
    await h.staff("Anna")
    await h.staff("Bram")
    # Active on weekends only: on Monday 2026-01-05 nobody is on call in it.
    await schedule(h, "weekend", ["Anna"], active={"days": ["sat", "sun"]})
    await schedule_chain(
        h,
        {"channel": "sms", "schedules": ["weekend"], "wait_seconds": 300},
        {"channel": "sms", "targets": [h.names["Bram"]], "wait_seconds": 300},
    )
    await h.report()
    await h.tick()
    h.expect(("Bram", SMS))


async def test_all_hands_include_whoever_is_on_call(h: Harness) -> None:
    for name in ("Anna", "Bram", "Carl"):
        await h.staff(name)
    await schedule(h, "managers", ["Bram", "Carl"])  # 2026-01-05 09:00 UTC: index 4 % 2 → Bram
    await schedule_chain(
        h,
        {"channel": "voice", "targets": [h.names["Anna"]], "wait_seconds": 900},
        all_hands={"channel": "sms", "schedules": ["managers"], "targets": [h.names["Anna"]]},
    )
    await h.report()
    await h.tick()
    h.expect(("Anna", VOICE))
    await h.advance(420)
    h.expect(("Anna", SMS), ("Bram", SMS))


async def test_a_chain_naming_an_unknown_schedule_is_refused(h: Harness) -> None:
    r = await h.client.post(
        "/v1/chains",
        json={
            "name": "x",
            "steps": [{"channel": "sms", "schedules": ["nope"], "wait_seconds": 60}],
        },
        headers=h.admin,
    )
    assert r.status_code == 422
    assert r.json()["error"]["field"] == "steps.0.schedules.0"
