"""The customer's status page: an unguessable URL, plain words, a countdown, nothing personal."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from sqlalchemy import select

from routing.report import status
from routing.report.models import Report, StatusToken
from tests.harness import SMS, Harness
from tests.web.test_report_form import filled, open_form, send


async def submit(h: Harness, lang: str = "en", **fields: str) -> str:
    """Send the web form; returns the status token from the redirect."""
    csrf = await open_form(h, lang)
    sent = await send(h, filled(csrf, language=lang, **fields), lang=lang)
    assert sent.status_code == 303, sent.text
    found = re.fullmatch(r"/status/([A-Za-z0-9_-]+)", sent.headers["location"])
    assert found
    return found.group(1)


async def report_for(h: Harness, token: str) -> Report:
    async with h.container.db() as session:
        report = await status.find_by_status_token(session, token)
    assert report is not None
    return report


async def poll(h: Harness, token: str) -> dict[str, Any]:
    r = await h.client.get(f"/status/{token}.json")
    assert r.status_code == 200
    return dict(r.json())


async def test_the_page_shows_the_reference_what_happens_and_the_countdown(h: Harness) -> None:
    token = await submit(h)
    report = await report_for(h, token)

    page = await h.client.get(f"/status/{token}")

    assert page.status_code == 200
    assert report.reference in page.text
    assert "We are calling a colleague" in page.text
    assert "10:00 left" in page.text
    assert "Block your card" in page.text
    assert "Never share codes" in page.text
    assert f'data-poll="/status/{token}.json?lang=en"' in page.text
    assert f'data-deadline="{report.deadline_at.isoformat()}"' in page.text
    h.clock.advance(61)
    assert "8:59 left" in (await h.client.get(f"/status/{token}")).text


async def test_the_page_speaks_the_language_the_customer_chose(h: Harness) -> None:
    token = await submit(h, lang="nl")
    dutch = await h.client.get(f"/status/{token}")
    assert '<html lang="nl">' in dutch.text
    assert "We bellen een collega" in dutch.text
    assert "Blokkeer uw pas" in dutch.text
    english = await h.client.get(f"/status/{token}?lang=en")
    assert "We are calling a colleague" in english.text
    assert (await poll(h, token))["message"].startswith("We bellen een collega")


async def test_the_json_follows_the_case_from_paging_to_accepted_to_resolved(h: Harness) -> None:
    await h.staff("Anna", "+31687654321")
    await h.chain(("sms", ["Anna"], 60))
    token = await submit(h)
    report = await report_for(h, token)
    await h.tick()
    h.expect(("Anna", SMS))

    paging = await poll(h, token)
    assert paging == {
        "reference": report.reference,
        "state": "paging",
        "message": "We are calling a colleague who will help you.",
        "helper": None,
        "deadline_at": report.deadline_at.isoformat(),
        "now": h.clock.now().isoformat(),
    }

    assert (await h.ack(report.id, "Anna")).status_code == 200

    accepted = await poll(h, token)
    assert accepted["state"] == "accepted"
    assert accepted["helper"] == "Anna"
    assert accepted["message"] == "Anna has your case and will call you shortly."
    page = await h.client.get(f"/status/{token}")
    assert "Anna has your case" in page.text
    assert 'id="promise" class="status-promise" hidden' in page.text  # no countdown once accepted

    resolved = await h.client.post(f"/v1/reports/{report.id}/resolve", headers=h.as_staff("Anna"))
    assert resolved.status_code == 200
    assert (await poll(h, token))["state"] == "resolved"


async def test_the_page_says_so_when_the_promise_is_missed(h: Harness) -> None:
    token = await submit(h)  # no chain: nobody to page, nobody accepts
    await h.advance(601)
    missed = await poll(h, token)
    assert missed["state"] == "missed"
    assert "longer than we promised" in missed["message"]
    assert "The 10 minutes have passed" in (await h.client.get(f"/status/{token}")).text


async def test_only_the_first_name_of_the_helper_is_shown(h: Harness) -> None:
    await h.staff("Bram de Vries", "+31687654321")
    token = await submit(h)
    await h.ack((await report_for(h, token)).id, "Bram de Vries")
    shown = (await h.client.get(f"/status/{token}")).text + str(await poll(h, token))
    assert "Bram" in shown
    assert "de Vries" not in shown
    assert "87654321" not in shown  # never the staff member's phone


async def test_unknown_or_mangled_tokens_are_404(h: Harness) -> None:
    token = await submit(h)
    for bad in ("x", token[:-1] + ("A" if token[-1] != "A" else "B"), "a" * 500, token + "x"):
        page = await h.client.get(f"/status/{bad}?lang=en")
        assert page.status_code == 404
        assert "does not exist" in page.text
        assert (await h.client.get(f"/status/{bad}.json")).status_code == 404


async def test_nothing_personal_leaks_between_reports_or_into_the_json(h: Harness) -> None:
    mine = await submit(h, callback_phone="06 11122233", description="my savings went to Lisbon")
    theirs = await submit(h, callback_phone="06 44455566", description="their card was skimmed")

    page = (await h.client.get(f"/status/{mine}")).text
    data = (await h.client.get(f"/status/{mine}.json")).text
    other_page = (await h.client.get(f"/status/{theirs}")).text

    for text in (page, data):
        for secret in ("06 44455566", "+31644455566", "644455566", "their card was skimmed"):
            assert secret not in text
    for secret in ("06 11122233", "+31611122233", "611122233", "my savings went to Lisbon"):
        assert secret not in other_page
    for secret in ("06 11122233", "+31611122233", "611122233", "my savings went to Lisbon"):
        assert secret not in data
    assert "+31611122233" not in page  # the customer's own number appears only masked
    assert "+31*******33" in page


async def test_the_token_is_long_and_only_its_hash_is_stored(h: Harness) -> None:
    token = await submit(h)
    assert len(token) >= 43
    report = await report_for(h, token)
    async with h.container.db() as session:
        kept = (await session.scalars(select(StatusToken))).all()
    assert [(t.token_hash, t.report_id) for t in kept] == [
        (hashlib.sha256(token.encode()).hexdigest(), report.id)
    ]
    stored = [getattr(report, c.key) for c in Report.__table__.columns]
    assert all(token not in str(value) for value in stored)


async def test_a_customer_who_reports_in_the_app_and_then_on_the_web_keeps_both_links(
    h: Harness,
) -> None:
    created = await h.client.post(
        "/v1/reports",
        json={"category": "fraud", "callback_phone": "06 55500011"},
        headers=h.app,
    )
    assert created.status_code == 201
    app_link = created.json()["status_url"]
    assert app_link.startswith("http://127.0.0.1:8000/status/")
    web_token = await submit(h, callback_phone="06 55500011")  # joins the open case

    app_token = app_link.rsplit("/", 1)[1]
    assert (await report_for(h, web_token)).id == created.json()["id"]
    assert (await report_for(h, app_token)).id == created.json()["id"]
    assert (await h.client.get(app_link.removeprefix("http://127.0.0.1:8000"))).status_code == 200


async def test_the_page_keeps_the_token_to_itself_and_ships_its_own_script(h: Harness) -> None:
    token = await submit(h)
    page = await h.client.get(f"/status/{token}")
    assert page.headers["referrer-policy"] == "no-referrer"  # the token must not leak onwards
    assert page.headers["cache-control"] == "no-store"
    assert "noindex" in page.headers["x-robots-tag"]
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert re.findall(r"<script[^>]*>", page.text) == ['<script src="/static/status.js" defer>']
    assert " style=" not in page.text
    assert re.findall(r'(?:href|src)="(https?:|//)', page.text) == []
    script = await h.client.get("/static/status.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert "innerHTML" not in script.text
    data = await h.client.get(f"/status/{token}.json")
    assert data.headers["cache-control"] == "no-store"


async def test_the_customer_can_ask_to_be_called_later_from_the_status_page(h: Harness) -> None:
    await h.staff("Anna")
    await h.chain(("sms", ["Anna"], 120))
    token = await submit(h)
    await h.tick()
    h.expect(("Anna", SMS))
    page = await h.client.get(f"/status/{token}")
    assert f'action="/status/{token}/callback?lang=en"' in page.text
    assert "Rather be called later?" in page.text

    assert h.clock.now().isoformat() == "2026-01-05T09:00:00+00:00"
    r = await h.client.post(
        f"/status/{token}/callback?lang=en",
        content="when=60",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 303
    assert r.headers["location"] == f"/status/{token}?lang=en"

    polled = await poll(h, token)
    assert polled["state"] == "scheduled"
    assert "we will call you at" in polled["message"]
    assert "05-01 11:00" in polled["message"]  # 10:00 UTC is 11:00 in Amsterdam in winter
    page = await h.client.get(f"/status/{token}")
    assert "Rather be called later?" not in page.text  # asked once; staff can still take it
    await h.tick()
    report = await report_for(h, token)
    confirmation = h.expect_customer_text(report)
    assert confirmation.body == (
        f"SOS report {report.reference}: we will call you on Monday 5 January at 11:00."
    )

    await h.advance(3599)
    h.expect_none()
    await h.advance(1)
    h.expect(("Anna", SMS))
    assert (await poll(h, token))["state"] == "paging"


async def test_an_unknown_callback_choice_changes_nothing(h: Harness) -> None:
    token = await submit(h)
    r = await h.client.post(
        f"/status/{token}/callback",
        content="when=yesterday",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 303
    assert "callback_error=1" in r.headers["location"]
    assert (await poll(h, token))["state"] == "paging"
    page = await h.client.get(r.headers["location"])
    assert "Choose one of the times." in page.text


async def test_a_callback_for_an_unknown_status_page_is_404(h: Harness) -> None:
    r = await h.client.post(
        f"/status/{'x' * 43}/callback",
        content="when=60",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 404
