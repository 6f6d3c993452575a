from tests.harness import SMS, VOICE, Harness


async def test_first_page_goes_out_right_after_intake(h: Harness) -> None:
    await h.staff("Anna")
    await h.chain(("voice", ["Anna"], 30))
    h.container.engine._wake.clear()

    report = await h.report()

    assert h.container.engine._wake.is_set(), "intake must wake the engine, not wait for a poll"
    await h.tick()  # no clock advance: the page is due at the moment of intake
    (page,) = h.expect(("Anna", VOICE))
    assert page.reference == report["reference"]
    assert "06" not in page.text and "12345678" not in page.text


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
