"""Who is paged first within a step: free before busy, the colleague who helped this customer
before, speakers of the report's language, holders of the skill its category needs. Later tiers
get their turn when the step's wait runs out or every page of the tier failed."""

from __future__ import annotations

from providers.fake import NO_ANSWER
from tests.harness import SMS, VOICE, Harness, types


async def test_a_dutch_report_pages_dutch_speakers_first_then_the_others(h: Harness) -> None:
    await h.staff("Anna", languages=["en"])
    await h.staff("Bram", languages=["nl"])
    await h.chain(("sms", ["Anna", "Bram"], 60))
    report = await h.report(language="nl")
    await h.tick()
    h.expect(("Bram", SMS))

    await h.advance(59)
    h.expect_none()
    await h.advance(1)  # Bram had his turn: the others now, in the same step
    h.expect(("Anna", SMS))

    await h.advance(60)  # every tier had its turn: the chain is exhausted
    h.expect_none()
    seen = await h.get(report["id"])
    assert seen["escalation"]["exhausted"] is True
    routed = next(e for e in seen["timeline"] if e["type"] == "routed")
    assert "Bram (speaks nl" in routed["detail"]
    assert routed["detail"].index("Bram") < routed["detail"].index("Anna")


async def test_an_english_report_pages_english_speakers_first(h: Harness) -> None:
    await h.staff("Anna", languages=["en"])
    await h.staff("Bram", languages=["nl"])
    await h.chain(("sms", ["Bram", "Anna"], 60))
    await h.report(language="en")
    await h.tick()
    h.expect(("Anna", SMS))


async def test_a_fraud_report_pages_the_fraud_skill_first(h: Harness) -> None:
    await h.staff("Anna")
    await h.staff("Bram", skills=["fraud"])
    await h.staff("Carl", skills=["cards"])
    await h.chain(("sms", ["Anna", "Bram", "Carl"], 60))

    await h.report(category="fraud")
    await h.tick()
    h.expect(("Bram", SMS))

    await h.report(category="lost_card")
    await h.tick()
    h.expect(("Carl", SMS))


async def test_language_comes_before_skill(h: Harness) -> None:
    await h.staff("Anna", languages=["en"], skills=["fraud"])
    await h.staff("Bram", languages=["nl"])
    await h.staff("Carl", languages=["nl"], skills=["fraud"])
    await h.chain(("sms", ["Anna", "Bram", "Carl"], 30))
    await h.report(language="nl", category="fraud")
    await h.tick()
    h.expect(("Carl", SMS))
    await h.advance(30)
    h.expect(("Bram", SMS))
    await h.advance(30)
    h.expect(("Anna", SMS))


async def test_when_nobody_matches_everyone_is_paged_at_once(h: Harness) -> None:
    await h.staff("Anna", languages=["en"])
    await h.staff("Bram", languages=["en"])
    await h.chain(("sms", ["Anna", "Bram"], 60))
    report = await h.report(language="nl", category="fraud")
    await h.tick()
    h.expect(("Anna", SMS), ("Bram", SMS))
    assert "routed" not in types(await h.get(report["id"]))


async def test_a_missed_call_gives_the_next_tier_its_turn_at_once(h: Harness) -> None:
    await h.staff("Anna", languages=["en"])
    await h.staff("Bram", languages=["nl"])
    await h.chain(("voice", ["Anna", "Bram"], 120))
    h.sender.script(NO_ANSWER, channel=VOICE)
    await h.report(language="nl")
    await h.tick()
    h.expect(("Bram", VOICE), ("Anna", VOICE))  # Bram missed it; Anna rings in the same second


async def test_busy_colleagues_are_paged_only_when_no_one_free_is_left(h: Harness) -> None:
    await h.staff("Anna")
    await h.staff("Bram")
    await h.chain(("sms", ["Anna", "Bram"], 60))
    first = await h.report()
    await h.tick()
    h.expect(("Anna", SMS), ("Bram", SMS))
    assert (await h.ack(first["id"], "Anna")).status_code == 200

    second = await h.report()  # Anna holds the first report: Bram first
    await h.tick()
    h.expect(("Bram", SMS))
    h.expect_accepted_text(first, by="Anna")
    await h.advance(60)
    h.expect(("Anna", SMS))
    routed = next(e for e in (await h.get(second["id"]))["timeline"] if e["type"] == "routed")
    assert "Anna (speaks nl, busy with another report)" in routed["detail"]

    r = await h.client.post(f"/v1/reports/{first['id']}/resolve", headers=h.as_staff("Anna"))
    assert r.status_code == 200
    await h.report()  # Anna is free again
    await h.tick()
    h.expect(("Anna", SMS), ("Bram", SMS))


async def test_a_busy_colleague_is_still_paged_when_nobody_else_is_there(h: Harness) -> None:
    await h.staff("Anna")
    await h.chain(("sms", ["Anna"], 60))
    first = await h.report()
    await h.tick()
    h.expect(("Anna", SMS))
    await h.ack(first["id"], "Anna")
    await h.report()
    await h.tick()
    h.expect(("Anna", SMS))
    h.expect_accepted_text(first, by="Anna")


async def test_the_colleague_who_helped_before_is_paged_first_on_any_channel(h: Harness) -> None:
    await h.staff("Anna")
    await h.staff("Bram")
    await h.staff("Carl")
    await h.chain(("sms", ["Anna", "Bram"], 60))
    first = await h.report(callback_phone="06 55500011", customer_ref="C-981")
    await h.tick()
    h.expect(("Anna", SMS), ("Bram", SMS))
    await h.ack(first["id"], "Bram")
    await h.client.post(f"/v1/reports/{first['id']}/resolve", headers=h.as_staff("Bram"))
    await h.tick()
    h.expect_accepted_text(first, by="Bram")

    h.clock.advance(3 * 3600)
    # The same customer (by customer_ref) from another phone, through the web form this time.
    second = await h.report(callback_phone="06 55500099", customer_ref="C-981", channel="web")
    await h.tick()
    h.expect(("Bram", SMS))
    await h.advance(60)
    h.expect(("Anna", SMS))
    routed = next(e for e in (await h.get(second["id"]))["timeline"] if e["type"] == "routed")
    assert "Bram (helped this customer before" in routed["detail"]


async def test_the_previous_helper_is_paged_even_when_the_step_does_not_name_them(
    h: Harness,
) -> None:
    await h.staff("Anna")
    await h.staff("Bram")
    await h.chain(("sms", ["Bram"], 60), name="first")
    first = await h.report(callback_phone="06 55500011")
    await h.tick()
    h.expect(("Bram", SMS))
    await h.ack(first["id"], "Bram")
    await h.client.post(f"/v1/reports/{first['id']}/resolve", headers=h.as_staff("Bram"))
    await h.tick()
    h.expect_accepted_text(first, by="Bram")

    await h.chain(("sms", ["Anna"], 60), name="second")  # Bram is not in the new chain
    await h.report(callback_phone="06 55500011")
    await h.tick()
    h.expect(("Bram", SMS))
    await h.advance(60)
    h.expect(("Anna", SMS))


async def test_after_24_hours_the_previous_helper_has_no_head_start(h: Harness) -> None:
    await h.staff("Anna")
    await h.staff("Bram")
    await h.chain(("sms", ["Anna", "Bram"], 60))
    first = await h.report(callback_phone="06 55500011")
    await h.tick()
    h.expect(("Anna", SMS), ("Bram", SMS))
    await h.ack(first["id"], "Bram")
    await h.client.post(f"/v1/reports/{first['id']}/resolve", headers=h.as_staff("Bram"))
    await h.tick()
    h.expect_accepted_text(first, by="Bram")

    h.clock.advance(24 * 3600 + 1)
    await h.report(callback_phone="06 55500011")
    await h.tick()
    h.expect(("Anna", SMS), ("Bram", SMS))
