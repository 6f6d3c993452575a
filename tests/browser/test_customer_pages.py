"""A customer with only a browser: report fraud on /report and watch help arrive."""

from playwright.async_api import Page, expect
from sqlalchemy import select

from routing.report.models import Report
from tests.harness import VOICE, Harness


async def test_report_on_the_web_and_see_the_status_change_on_accept(
    h: Harness, live: str, page: Page
) -> None:
    await h.staff("Anna", languages=["en"])
    await h.chain(("voice", ["Anna"], 600))
    await page.clock.install()

    await page.goto(f"{live}/report?lang=en")
    await page.get_by_label("I think I am being scammed or have lost money").check()
    await page.get_by_label("Which number can we call you on?").fill("06 1234 5678")
    await page.locator("textarea").fill("Money left my account that I did not send.")
    await page.get_by_role("button", name="Send: call me back").click()

    await page.wait_for_url(f"{live}/status/**")
    async with h.container.db() as session:
        (report,) = list(await session.scalars(select(Report)))
    assert report.channel == "web"
    assert report.callback_phone == "+31612345678"
    await expect(page.get_by_text(report.reference)).to_be_visible()
    status = page.locator("#status-message")
    before = await status.text_content()
    assert before
    assert "Anna" not in before

    await h.tick()
    h.expect(("Anna", VOICE))
    await h.ack(report.id, "Anna")
    await page.clock.run_for(6000)  # the page polls every 5 seconds

    await expect(status).to_contain_text("Anna has your case")
    await expect(page.locator("#promise")).to_be_hidden()
    content = await page.content()
    assert "+31612345678" not in content  # nothing personal beyond a masked number
    assert "did not send" not in content


async def test_a_bad_phone_number_is_shown_next_to_the_field_and_the_text_kept(
    h: Harness, live: str, page: Page
) -> None:
    del h
    await page.goto(f"{live}/report?lang=en")
    await page.get_by_label("I think I am being scammed or have lost money").check()
    await page.get_by_label("Which number can we call you on?").fill("12")
    await page.locator("textarea").fill("Someone called pretending to be the bank.")
    await page.get_by_role("button", name="Send: call me back").click()

    await expect(page.locator("#callback_phone-error")).to_be_visible()
    await expect(page.locator("textarea")).to_have_value(
        "Someone called pretending to be the bank."
    )
