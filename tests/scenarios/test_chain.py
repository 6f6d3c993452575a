from providers.fake import DELIVERED
from tests.harness import CHAT, SMS, VOICE, Harness, types


async def test_chain_repeats_then_pages_the_last_resort_and_stays_open(h: Harness) -> None:
    for name in ("Anna", "Bram", "Duty"):
        await h.staff(name)
    await h.chain(
        ("voice", ["Anna"], 30),
        ("sms", ["Bram"], 60),
        repeat=1,
        last_resort={"channel": "sms", "targets": ["Duty"]},
    )
    report = await h.report()
    await h.tick()
    (first_call,) = h.expect(("Anna", VOICE))
    await h.advance(30)
    h.expect(("Bram", SMS))
    await h.call_ends(first_call)  # else it may still ring: one call at a time per person
    await h.advance(60)
    h.expect(("Anna", VOICE))  # the whole chain again (repeat=1)
    await h.advance(30)
    h.expect(("Bram", SMS))
    await h.advance(59)
    h.expect_none()
    await h.advance(1)
    h.expect(("Duty", SMS))

    await h.advance(3600)
    h.expect_none()
    seen = await h.get(report["id"])
    assert seen["status"] == "open"
    assert seen["acknowledged_at"] is None
    assert seen["escalation"]["exhausted"] is True
    last = [e for e in seen["timeline"] if e["type"] == "escalated"][-1]
    assert "exhausted" in last["detail"]
    assert "Duty" in last["detail"]


async def test_exhausted_chain_without_last_resort_is_recorded(h: Harness) -> None:
    await h.staff("Anna")
    await h.chain(("voice", ["Anna"], 30))
    report = await h.report()
    await h.tick()
    h.expect(("Anna", VOICE))
    await h.advance(30)
    h.expect_none()
    seen = await h.get(report["id"])
    assert seen["escalation"]["exhausted"] is True
    assert types(seen)[-1] == "escalated"
    assert "no last resort" in seen["timeline"][-1]["detail"]


async def test_running_escalation_keeps_the_chain_it_started_with(h: Harness) -> None:
    await h.staff("Anna")
    await h.staff("Bram")
    await h.chain(("voice", ["Anna"], 30), ("voice", ["Bram"], 30), name="old")
    report = await h.report()
    await h.tick()
    h.expect(("Anna", VOICE))

    h.clock.advance(1)
    await h.chain(("sms", ["Bram"], 30), ("sms", ["Bram"], 30), name="new")
    await h.advance(30)

    h.expect(("Bram", VOICE))
    assert (await h.get(report["id"]))["escalation"]["chain"] == "old"
    newer = await h.report()
    await h.tick()
    h.expect(("Bram", SMS))
    assert (await h.get(newer["id"]))["escalation"]["chain"] == "new"


async def test_category_chain_wins_over_the_default(h: Harness) -> None:
    await h.staff("Anna")
    await h.staff("Cards")
    await h.chain(("voice", ["Anna"], 30), name="default")
    h.clock.advance(1)
    await h.chain(("sms", ["Cards"], 30), categories=["lost_card"], name="cards")
    await h.report(category="lost_card")
    await h.tick()
    h.expect(("Cards", SMS))
    await h.report(category="fraud")
    await h.tick()
    h.expect(("Anna", VOICE))


async def test_chat_step_to_someone_without_chat_id_falls_back_at_once(h: Harness) -> None:
    await h.staff("Anna")
    await h.staff("Bram", chat_id="U123")
    await h.chain(("chat", ["Anna"], 60), ("chat", ["Bram"], 60))
    report = await h.report()
    await h.tick()
    (page,) = h.expect(("Bram", CHAT))
    assert page.to == "U123"
    seen = await h.get(report["id"])
    assert "no chat id" in next(e for e in seen["timeline"] if e["type"] == "page_failed")["detail"]


async def test_delivered_page_is_shown_and_does_not_stop_the_chain(h: Harness) -> None:
    await h.staff("Anna")
    await h.staff("Bram")
    await h.chain(("sms", ["Anna"], 30), ("voice", ["Bram"], 30))
    h.sender.script(DELIVERED)
    report = await h.report()
    await h.tick()
    h.expect(("Anna", SMS))
    await h.advance(30)
    h.expect(("Bram", VOICE))  # delivered is not accepted: only a human's ack stops the chain
    assert "page_delivered" in types(await h.get(report["id"]))
