"""One case per customer, all hands before the promise breaks, and callback appointments."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from providers.base import OutboundPage, SendResult, TemporaryProviderError
from routing.page.models import Page
from routing.report import service as report_service
from routing.report.models import Report
from routing.report.schemas import ReportCreate
from routing.types import Category, Role
from tests.harness import SMS, VOICE, Harness, types


def at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# --- one case per customer -----------------------------------------------------------------------


async def test_a_second_report_from_the_same_phone_joins_the_open_case(h: Harness) -> None:
    await h.staff("Anna")
    await h.chain(("voice", ["Anna"], 300))
    first = await h.report(callback_phone="06 55500011", description="money left my account")
    await h.tick()
    h.expect(("Anna", VOICE))

    h.clock.advance(120)
    r = await h.submit(callback_phone="+31655500011", description="and my card is gone")
    await h.tick()

    assert r.status_code == 200
    assert r.headers["case-joined"] == "true"
    case = r.json()
    assert case["id"] == first["id"]
    assert case["contacts"] == 2
    assert case["deadline_at"] == first["deadline_at"]  # the earliest contact counts
    assert "and my card is gone" in case["description"]
    assert "money left my account" in case["description"]
    assert types(case).count("contact") == 1
    assert await h.count(Report) == 1
    h.expect_none()  # no second round of paging for the same emergency


async def test_the_same_customer_ref_from_another_phone_joins_the_case(h: Harness) -> None:
    first = await h.report(customer_ref="C-1", callback_phone="06 55500011")
    r = await h.submit(customer_ref="C-1", callback_phone="06 55500022", channel="web")
    assert r.status_code == 200
    assert r.json()["id"] == first["id"]
    contact = next(e for e in r.json()["timeline"] if e["type"] == "contact")
    assert "by web" in contact["detail"]


async def test_an_accepted_case_is_still_open_and_joined(h: Harness) -> None:
    await h.staff("Anna")
    await h.chain(("sms", ["Anna"], 60))
    first = await h.report(callback_phone="06 55500011")
    await h.tick()
    h.expect(("Anna", SMS))
    await h.ack(first["id"], "Anna")
    r = await h.submit(callback_phone="06 55500011")
    await h.tick()
    assert r.status_code == 200
    assert r.json()["acknowledged_by"]["name"] == "Anna"
    h.expect_accepted_text(first, by="Anna")  # once, for the acceptance: joining sends nothing
    h.expect_none()


async def test_after_resolution_the_customer_opens_a_new_case(h: Harness) -> None:
    await h.staff("Anna")
    first = await h.report(callback_phone="06 55500011")
    await h.client.post(f"/v1/reports/{first['id']}/resolve", headers=h.as_staff("Anna"))
    second = await h.report(callback_phone="06 55500011")
    assert second["id"] != first["id"]
    assert second["contacts"] == 1


async def test_an_earlier_first_contact_moves_the_promise_earlier(h: Harness) -> None:
    """A call that arrived before an app report (its menu took a while) is the first contact."""
    first = await h.report(callback_phone="06 55500011")
    called_at = at(first["received_at"]) - timedelta(seconds=40)
    async with h.container.db.begin() as session:
        case, _ = await report_service.submit(
            session,
            data=ReportCreate(category=Category.FRAUD, callback_phone="+31655500011"),
            now=h.clock.now(),
            sla_seconds=600,
            channel="sos_line",
            received_at=called_at,
        )
        assert case.id == first["id"]
    seen = await h.get(first["id"])
    assert at(seen["received_at"]) == called_at
    assert at(seen["deadline_at"]) == called_at + timedelta(seconds=600)
    await h.advance(599 - 40)
    assert (await h.get(first["id"]))["sla"]["met"] is None
    await h.advance(2)
    assert (await h.get(first["id"]))["sla"]["met"] is False


async def test_different_customers_are_different_cases(h: Harness) -> None:
    a = await h.report(callback_phone="06 55500011", customer_ref="C-1")
    b = await h.report(callback_phone="06 55500022", customer_ref="C-2")
    assert a["id"] != b["id"]


# --- all hands before the promise breaks ---------------------------------------------------------


async def test_at_deadline_minus_prebreach_all_hands_are_paged_at_once(h: Harness) -> None:
    await h.staff("Anna")
    await h.staff("Bram")
    await h.staff("Carl")
    await h.chain(
        ("voice", ["Anna"], 600), all_hands={"channel": "sms", "targets": ["Bram", "Carl"]}
    )
    report = await h.report()
    await h.tick()
    h.expect(("Anna", VOICE))

    await h.advance(600 - 180 - 1)
    h.expect_none()
    await h.advance(1)  # deadline - 180 s, to the second
    h.expect(("Bram", SMS), ("Carl", SMS))
    seen = await h.get(report["id"])
    risk = [e for e in seen["timeline"] if e["type"] == "escalated"]
    assert len(risk) == 1
    assert "promise at risk (180 s left): all hands, sms to Bram, Carl" in risk[0]["detail"]
    assert at(risk[0]["at"]) == at(seen["deadline_at"]) - timedelta(seconds=180)

    await h.advance(300)  # exactly one page per target: nothing more
    h.expect_none()
    assert await h.count(Page, Page.report_id == report["id"]) == 3


async def test_no_all_hands_when_someone_accepted_in_time(h: Harness) -> None:
    await h.staff("Anna")
    await h.staff("Bram")
    await h.chain(("voice", ["Anna"], 600), all_hands={"channel": "sms", "targets": ["Bram"]})
    report = await h.report()
    await h.tick()
    h.expect(("Anna", VOICE))
    await h.advance(300)
    await h.ack(report["id"], "Anna")
    await h.tick()
    h.expect_accepted_text(report, by="Anna")
    await h.advance(600)
    h.expect_none()


# --- callback appointments -----------------------------------------------------------------------


async def test_a_callback_appointment_pages_at_that_time_and_measures_from_it(h: Harness) -> None:
    await h.staff("Anna")
    await h.chain(("sms", ["Anna"], 120))
    report = await h.report()
    await h.tick()
    h.expect(("Anna", SMS))

    h.clock.advance(60)
    when = h.clock.now() + timedelta(hours=2)
    r = await h.client.post(
        f"/v1/reports/{report['id']}/callback", json={"at": when.isoformat()}, headers=h.app
    )
    assert r.status_code == 200, r.text
    assert at(r.json()["callback_at"]) == when
    assert at(r.json()["deadline_at"]) == when + timedelta(seconds=600)
    await h.tick()
    confirmation = h.expect_customer_text(report)
    assert confirmation.body == (
        f"SOS-melding {report['reference']}: we bellen u op maandag 5 januari om 12:01."
    )  # 11:01 UTC is 12:01 in Amsterdam

    await h.advance(2 * 3600 - 1)  # the old deadline passes: no verdict, no paging
    h.expect_none()
    assert (await h.get(report["id"]))["sla"]["met"] is None
    await h.advance(1)
    h.expect(("Anna", SMS))
    await h.advance(500)
    assert (await h.ack(report["id"], "Anna")).status_code == 200
    seen = await h.get(report["id"])
    assert seen["sla"]["met"] is True
    assert "callback_requested" in types(seen)


async def test_an_unanswered_appointment_breaks_the_promise_ten_minutes_after_it(
    h: Harness,
) -> None:
    await h.staff("Anna")
    await h.chain(("sms", ["Anna"], 900))
    when = h.clock.now() + timedelta(minutes=30)
    report = await h.report(callback_at=when.isoformat())
    await h.tick()
    h.expect_none()  # nothing until the appointment
    await h.advance(30 * 60)
    h.expect(("Anna", SMS))
    await h.advance(600)
    assert (await h.get(report["id"]))["sla"]["met"] is None
    await h.advance(1)
    assert (await h.get(report["id"]))["sla"]["met"] is False


async def test_a_page_in_flight_when_a_callback_is_asked_for_waits_for_the_appointment(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    await h.staff("Anna")
    await h.chain(("sms", ["Anna"], 120))
    report = await h.report()
    when = h.clock.now() + timedelta(hours=2)
    first_send = h.sender.send

    async def callback_meanwhile(_page: OutboundPage) -> SendResult:
        # The customer asks to be called later while the provider answers Anna's SMS: 429.
        monkeypatch.setattr(h.sender, "send", first_send)
        r = await h.client.post(
            f"/v1/reports/{report['id']}/callback", json={"at": when.isoformat()}, headers=h.app
        )
        assert r.status_code == 200, r.text
        raise TemporaryProviderError("429 too many requests")

    monkeypatch.setattr(h.sender, "send", callback_meanwhile)
    await h.advance(60)

    h.expect_customer_text(report)  # the appointment's confirmation
    h.expect_none()  # the rate-limited page is not tried again before the appointment
    await h.advance(2 * 3600 - 60)
    h.expect(("Anna", SMS))


async def test_callback_times_in_the_past_or_far_ahead_are_refused(h: Harness) -> None:
    report = await h.report()
    for when in (h.clock.now() - timedelta(minutes=5), h.clock.now() + timedelta(days=8)):
        r = await h.client.post(
            f"/v1/reports/{report['id']}/callback", json={"at": when.isoformat()}, headers=h.app
        )
        assert r.status_code == 422
        assert r.json()["error"]["field"] == "at"
    r = await h.client.post(
        f"/v1/reports/{report['id']}/callback", json={"at": "2026-01-05T15:00:00"}, headers=h.app
    )
    assert r.status_code == 422  # no zone: ambiguous


async def test_an_accepted_report_cannot_be_moved_to_a_callback(h: Harness) -> None:
    await h.staff("Anna")
    report = await h.report()
    await h.ack(report["id"], "Anna")
    when = h.clock.now() + timedelta(hours=1)
    r = await h.client.post(
        f"/v1/reports/{report['id']}/callback", json={"at": when.isoformat()}, headers=h.app
    )
    assert r.status_code == 409
    assert "Anna" in r.json()["error"]["message"]


async def test_another_app_client_cannot_move_my_report(h: Harness) -> None:
    report = await h.report()
    other = await h.token(Role.APP)
    when = h.clock.now() + timedelta(hours=1)
    r = await h.client.post(
        f"/v1/reports/{report['id']}/callback", json={"at": when.isoformat()}, headers=other
    )
    assert r.status_code == 404
