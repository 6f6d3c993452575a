"""A staff member in a real browser: accept from an SMS link; the console counts down; the SLA
page draws its charts and offers a CSV that matches the database."""

import re

from playwright.async_api import Page, expect

from tests.harness import SMS, VOICE, Harness


async def test_ack_link_shows_then_accepts_on_the_button(h: Harness, live: str, page: Page) -> None:
    await h.staff("Anna", languages=["en"])
    await h.chain(("sms", ["Anna"], 600))
    report = await h.report()
    await h.tick()
    (sms,) = h.expect(("Anna", SMS))
    token = sms.text.rsplit("/ack/", 1)[1]

    await page.goto(f"{live}/ack/{token}")
    await expect(page.get_by_text(str(report["reference"]))).to_be_visible()
    assert (await h.get(str(report["id"])))["acknowledged_at"] is None  # opening changed nothing

    await page.get_by_role("button", name=re.compile("Accept")).click()

    await expect(page.get_by_text("You have report")).to_be_visible()
    await expect(page.get_by_text("+31612345678")).to_be_visible()
    assert (await h.get(str(report["id"])))["acknowledged_by"]["name"] == "Anna"


async def test_console_counts_down_and_accepts(h: Harness, live: str, page: Page) -> None:
    await h.staff("Anna", languages=["en"])
    await h.chain(("voice", ["Anna"], 3600))
    report = await h.report()
    await h.tick()
    h.expect(("Anna", VOICE))
    await page.clock.install()

    await page.goto(f"{live}/console/login")
    await page.get_by_label("Your staff token").fill(h.staff_tokens["Anna"][7:])
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_text(str(report["reference"]))).to_be_visible()
    countdown = page.locator(f'[data-report="{report["id"]}"] .countdown')
    await expect(countdown).to_have_text("10 min 00 s left")
    await page.clock.run_for(5000)
    await expect(countdown).to_have_text("9 min 55 s left")

    await page.get_by_role("button", name="Accept").click()
    await expect(page.get_by_text("Accepted by Anna")).to_be_visible()
    assert (await h.get(str(report["id"])))["acknowledged_by"]["name"] == "Anna"


async def test_sla_page_draws_charts_and_the_csv_matches(h: Harness, live: str, page: Page) -> None:
    await h.staff("Anna", languages=["en"])
    await h.chain(("voice", ["Anna"], 3600))
    report = await h.report()
    await h.tick()
    h.expect(("Anna", VOICE))
    await h.advance(75)
    await h.ack(str(report["id"]), "Anna")

    await page.goto(f"{live}/console/login")
    await page.get_by_label("Your staff token").fill(h.staff_tokens["Anna"][7:])
    await page.get_by_role("button", name="Sign in").click()
    await page.goto(f"{live}/console/sla")
    await expect(page.locator("svg.chart")).to_have_count(2)
    await expect(page.locator("#met")).to_have_text("1")
    box = await page.locator("svg.chart").first.bounding_box()
    assert box is not None
    assert box["width"] > 300  # drawn, and it fits a phone screen

    async with page.expect_download() as download_info:
        await page.get_by_text("Download the SLA log").click()
    download = await download_info.value
    lines = (await download.path()).read_text().splitlines()
    assert lines[0].startswith("reference,channel,category")
    assert lines[1].startswith(f"{report['reference']},app,fraud,")
    assert lines[1].endswith(",75.000,met")
