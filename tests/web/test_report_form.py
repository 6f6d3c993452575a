"""The customer's web form: CSRF, a rate limit, errors next to their field, the API's intake."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select

from app.web import report as web_report
from routing.report.models import Report
from tests.harness import SMS, Harness, types

CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')
STATUS_URL = re.compile(r"^/status/([A-Za-z0-9_-]+)$")


async def open_form(h: Harness, lang: str = "en") -> str:
    """Open the form like a browser (the client keeps the cookie); returns the hidden CSRF field."""
    shown = await h.client.get(f"/report?lang={lang}")
    assert shown.status_code == 200
    found = CSRF_FIELD.search(shown.text)
    assert found, "no CSRF field in the form"
    return found.group(1)


def filled(csrf: str, **fields: str) -> dict[str, str]:
    return {
        "category": "fraud",
        "callback_phone": "06 11122233",
        "language": "en",
        "description": "Money left my account",
        "csrf": csrf,
        **fields,
    }


async def send(h: Harness, form: dict[str, Any], lang: str = "en") -> httpx.Response:
    return await h.client.post(f"/report?lang={lang}", data=form)


async def web_reports(h: Harness) -> int:
    return await h.count(Report, Report.channel == "web")


async def test_the_form_speaks_dutch_by_default_and_english_when_asked(h: Harness) -> None:
    dutch = await h.client.get("/report")
    assert dutch.status_code == 200
    assert '<html lang="nl">' in dutch.text
    assert "Op welk nummer kunnen we u bellen?" in dutch.text
    assert 'href="/report?lang=en"' in dutch.text  # the way to English

    english = await h.client.get("/report?lang=en")
    assert '<html lang="en">' in english.text
    assert "Which number can we call you on?" in english.text

    preferred = {"Accept-Language": "de-DE, en;q=0.8, nl;q=0.5"}
    browser = await h.client.get("/report", headers=preferred)
    assert "Which number can we call you on?" in browser.text
    for category in ("fraud", "account_takeover", "lost_card", "other"):
        assert f'value="{category}"' in english.text


async def test_the_form_carries_a_signed_csrf_value_and_an_httponly_strict_cookie(
    h: Harness,
) -> None:
    shown = await h.client.get("/report?lang=en")
    cookie = shown.headers["set-cookie"].lower()
    assert cookie.startswith(f"{web_report.CSRF_COOKIE}=")
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert "secure" not in cookie  # plain http (tests, local): a Secure cookie would never return
    value = h.client.cookies[web_report.CSRF_COOKIE]
    field = CSRF_FIELD.search(shown.text)
    assert field
    assert field.group(1).startswith(value + ".")
    assert len(value) >= 43

    again = await h.client.get("/report?lang=en")
    assert h.client.cookies[web_report.CSRF_COOKIE] == value  # a second tab keeps the same value
    assert field.group(1) in again.text

    secure = await h.client.get("https://sos.test/report")
    assert "secure" in secure.headers["set-cookie"].lower()


async def test_the_form_needs_nothing_from_the_internet_and_no_inline_code(h: Harness) -> None:
    shown = await h.client.get("/report?lang=en")
    assert "script-src 'self'" in shown.headers["content-security-policy"]
    assert re.findall(r'(?:href|src|action)="(https?:|//)', shown.text) == []
    assert " style=" not in shown.text
    assert "<script" not in shown.text
    assert 'name="viewport"' in shown.text
    assert (await h.client.get("/static/sos.css")).status_code == 200


async def test_a_post_without_a_valid_csrf_value_is_refused_and_stores_nothing(h: Harness) -> None:
    forged = filled("", description="Call +31 20 999 9999 first")
    no_cookie = await send(h, forged)
    assert no_cookie.status_code == 403
    assert "was not sent" in no_cookie.text
    assert "+31 20 999 9999" not in no_cookie.text  # a forged form's values are never shown back

    csrf = await open_form(h)
    value = csrf.rpartition(".")[0]
    for bad in ("", "garbage", f"{value}.{'0' * 64}", f"{value}x.{csrf.rpartition('.')[2]}"):
        refused = await send(h, filled(bad))
        assert refused.status_code == 403, bad

    h.client.cookies.clear()  # the right field without the cookie: another site cannot set it
    assert (await send(h, filled(csrf))).status_code == 403
    assert await web_reports(h) == 0


async def test_a_bad_phone_number_is_shown_next_to_the_field_and_the_text_is_kept(
    h: Harness,
) -> None:
    csrf = await open_form(h)
    typed = 'They said "safe account" <b>now</b> & hung up'

    shown = await send(h, filled(csrf, callback_phone="06 1234", description=typed))

    assert shown.status_code == 422
    message = "This number does not look right"
    error_at = shown.text.index(message)
    field_at = shown.text.index('name="callback_phone"')
    assert abs(field_at - error_at) < 400, "the message is not next to the phone field"
    assert 'aria-invalid="true"' in shown.text
    assert 'value="06 1234"' in shown.text  # what the person typed stays
    assert "They said &#34;safe account&#34; &lt;b&gt;now&lt;/b&gt; &amp; hung up" in shown.text
    assert "<b>now</b>" not in shown.text
    assert 'value="fraud" required checked' in shown.text
    assert await web_reports(h) == 0

    fixed = CSRF_FIELD.search(shown.text)
    assert fixed
    resent = await send(h, filled(fixed.group(1), description=typed))
    assert resent.status_code == 303
    assert await web_reports(h) == 1


async def test_missing_answers_are_named_per_field(h: Harness) -> None:
    csrf = await open_form(h, "nl")
    shown = await send(h, filled(csrf, category="", callback_phone=""), lang="nl")
    assert shown.status_code == 422
    assert "Kies wat er is gebeurd." in shown.text
    assert "Vul het nummer in waarop we u kunnen bellen." in shown.text
    too_long = await send(h, filled(csrf, description="x" * 2001))
    assert too_long.status_code == 422
    assert "at most 2000 characters" in too_long.text
    assert await web_reports(h) == 0


async def test_a_good_report_goes_through_the_same_intake_and_pages_the_on_call_staff(
    h: Harness,
) -> None:
    await h.staff("Anna", "+31687654321")
    await h.chain(("sms", ["Anna"], 60))
    csrf = await open_form(h)

    sent = await send(h, filled(csrf, language="nl"))

    assert sent.status_code == 303
    assert STATUS_URL.match(sent.headers["location"])
    async with h.container.db() as session:
        report = await session.scalar(select(Report))
    assert report is not None
    assert report.channel == "web"
    assert report.callback_phone == "+31611122233"  # stored as E.164, like the API does
    assert report.language == "nl"
    assert report.description == "Money left my account"
    seen = await h.get(report.id)
    assert types(seen) == ["received"]
    assert "by web" in seen["timeline"][0]["detail"]

    await h.tick()

    h.expect(("Anna", SMS))


async def test_a_double_click_makes_one_report(h: Harness) -> None:
    csrf = await open_form(h)
    first = await send(h, filled(csrf))
    second = await send(h, filled(csrf))
    assert first.status_code == second.status_code == 303
    assert await web_reports(h) == 1
    assert (await h.client.get(second.headers["location"])).status_code == 200


async def test_the_sixth_report_from_one_address_in_ten_minutes_is_refused(h: Harness) -> None:
    csrf = await open_form(h)
    for n in range(web_report.RATE_LIMIT):
        # Different customers behind one address (one customer's reports would join one case).
        sent = await send(
            h, filled(csrf, description=f"report {n}", callback_phone=f"06 1111000{n}")
        )
        assert sent.status_code == 303
        h.clock.advance(60)

    refused = await send(h, filled(csrf, description="one too many"))

    assert refused.status_code == 429
    assert 0 < int(refused.headers["retry-after"]) <= 600
    assert int(refused.headers["retry-after"]) == 600 - 5 * 60  # when the first one leaves
    assert "Too many reports" in refused.text
    assert await web_reports(h) == web_report.RATE_LIMIT

    h.clock.advance(int(refused.headers["retry-after"]))
    assert (await send(h, filled(csrf, description="later"))).status_code == 303


async def test_typing_mistakes_do_not_count_towards_the_limit(h: Harness) -> None:
    csrf = await open_form(h)
    for _ in range(web_report.RATE_LIMIT + 1):
        assert (await send(h, filled(csrf, callback_phone="06"))).status_code == 422
    assert (await send(h, filled(csrf))).status_code == 303


def test_the_window_counts_each_address_on_its_own() -> None:
    window = web_report.SlidingWindow(2, timedelta(minutes=10), max_keys=3)
    t0 = datetime(2026, 1, 5, 9, tzinfo=UTC)
    for _ in range(2):
        window.record("10.0.0.1", t0)
    assert window.retry_after("10.0.0.1", t0) == 600
    assert window.retry_after("10.0.0.2", t0) == 0
    assert window.retry_after("10.0.0.1", t0 + timedelta(minutes=10)) == 0
    for n in range(5):  # more addresses than it keeps: memory stays bounded
        window.record(f"10.0.1.{n}", t0)
    assert len(window._hits) <= 3
