from tests.harness import SMS, VOICE, Harness


async def test_first_page_goes_out_right_after_intake(h: Harness) -> None:
    await h.staff("Anna")
    await h.chain(("voice", ["Anna"], 30))
    h.container.engine._wake.clear()

    report = await h.report(description="my IBAN NL91ABNA0417164300 was emptied")

    assert h.container.engine._wake.is_set(), "intake must wake the engine, not wait for a poll"
    await h.tick()  # no clock advance: the page is due at the moment of intake
    (page,) = h.expect(("Anna", VOICE))
    assert page.reference == report["reference"]
    for private in ("12345678", "NL91", "IBAN"):
        assert private not in page.text


async def test_next_step_fires_when_its_wait_expires_to_the_second(h: Harness) -> None:
    await h.staff("Anna")
    await h.staff("Bram")
    await h.chain(("voice", ["Anna"], 30), ("sms", ["Bram"], 60))
    await h.report()
    await h.tick()
    h.expect(("Anna", VOICE))

    await h.advance(29)
    h.expect_none()
    await h.advance(1)
    h.expect(("Bram", SMS))


async def test_a_step_pages_all_its_targets_at_once(h: Harness) -> None:
    await h.staff("Anna")
    await h.staff("Bram")
    await h.chain(("sms", ["Anna", "Bram"], 30))
    await h.report()
    await h.tick()
    h.expect(("Anna", SMS), ("Bram", SMS))


async def test_pages_are_in_the_staff_members_language(h: Harness) -> None:
    await h.staff("Anna", languages=["en", "nl"])  # reads English, also speaks Dutch
    await h.staff("Bram", languages=["nl"])
    await h.chain(("sms", ["Anna", "Bram"], 30))
    report = await h.report(category="lost_card")
    await h.tick()
    pages = {p.staff_name: p for p in h.expect(("Anna", SMS), ("Bram", SMS))}
    assert "lost or stolen card" in pages["Anna"].text
    assert "verloren of gestolen pas" in pages["Bram"].text
    assert report["reference"] in pages["Anna"].text


async def test_report_without_any_chain_is_kept_and_still_judged(h: Harness) -> None:
    report = await h.report()
    await h.tick()
    h.expect_none()
    await h.advance(601)
    seen = await h.get(report["id"])
    assert seen["sla"]["met"] is False
    assert [e["type"] for e in seen["timeline"]] == ["received", "no_chain", "sla_missed"]
