from routing.page.models import EscalationTimer, Page
from tests.harness import SMS, VOICE, Harness, types


async def _two_step(h: Harness) -> dict[str, object]:
    await h.staff("Anna")
    await h.staff("Bram")
    await h.chain(("voice", ["Anna"], 30), ("sms", ["Bram"], 60), repeat=2)
    report = await h.report()
    await h.tick()
    h.expect(("Anna", VOICE))
    return report


async def test_ack_stops_all_further_paging(h: Harness) -> None:
    report = await _two_step(h)
    await h.advance(10)

    r = await h.ack(str(report["id"]), "Anna")

    assert r.status_code == 200
    assert r.json()["status"] == "acknowledged"
    await h.tick()
    h.expect_accepted_text(report, by="Anna")
    await h.advance(3600)
    h.expect_none()
    pending = await h.count(EscalationTimer, EscalationTimer.state.in_(("pending", "leased")))
    assert pending == 0


async def test_ack_is_the_verdict_met_with_time_to_ack(h: Harness) -> None:
    report = await _two_step(h)
    await h.advance(45)
    h.expect(("Bram", SMS))

    await h.ack(str(report["id"]), "Bram")

    seen = await h.get(str(report["id"]))
    assert seen["sla"] == {"met": True, "time_to_ack_seconds": 45.0}
    assert seen["acknowledged_by"]["name"] == "Bram"
    assert types(seen) == [
        "received",
        "page_queued",
        "page_sent",
        "escalated",
        "page_queued",
        "page_sent",
        "acknowledged",
    ]


async def test_first_ack_wins_and_the_loser_is_told_who_has_it(h: Harness) -> None:
    report = await _two_step(h)
    first = await h.ack(str(report["id"]), "Anna")
    second = await h.ack(str(report["id"]), "Bram")
    again = await h.ack(str(report["id"]), "Anna")

    assert first.status_code == 200
    assert second.status_code == 409
    assert second.json()["error"]["code"] == "already_acknowledged"
    assert second.json()["error"]["acknowledged_by"]["name"] == "Anna"
    assert "Anna" in second.json()["error"]["message"]
    assert again.status_code == 200
    seen = await h.get(str(report["id"]))
    assert types(seen).count("acknowledged") == 1


async def test_ack_cancels_a_page_that_was_due_but_not_yet_sent(h: Harness) -> None:
    report = await _two_step(h)
    # Step 2 becomes due; the escalator creates Bram's page, but before the dispatcher sends it
    # Anna accepts. The created page must be canceled, never sent.
    h.clock.advance(30)
    escalator = h.container.engine.modules[0]
    await escalator.run_once(h.container.db, h.clock.now())
    assert await h.count(Page, Page.state == "pending") == 1

    await h.ack(str(report["id"]), "Anna")

    await h.tick()
    h.expect()  # Bram's page was canceled, never sent
    h.expect_accepted_text(report, by="Anna")
    h.expect_none()
    assert await h.count(Page, Page.state == "canceled") == 1


async def test_resolve_closes_and_stops_paging(h: Harness) -> None:
    report = await _two_step(h)
    r = await h.client.post(f"/v1/reports/{report['id']}/resolve", headers=h.as_staff("Bram"))
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "resolved"
    assert body["acknowledged_by"]["name"] == "Bram"
    assert body["resolved_by"]["name"] == "Bram"
    await h.advance(600)  # no pages, and no "Bram calls you now" text: the case is settled
    h.expect_none()
    assert types(await h.get(str(report["id"])))[-2:] == ["acknowledged", "resolved"]
