"""A wave of reports: one call at a time per person, SMS pages bundled within a per-person
window, every report stored, counted against the promise and served in deadline order.

These run on both backends (SOS_TEST_DATABASE_URL selects PostgreSQL); they carry no `postgres`
marker, which would skip them on SQLite. The 500-report wave takes about 20-30 s: reports are
stored through the intake service in ten bursts of 50 (the HTTP API costs ~2x as much for the
same intake and is covered elsewhere)."""

from __future__ import annotations

import re
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update

from providers.base import OutboundPage, OutcomeUnknownError, SendResult
from providers.fake import FAILS_PERMANENTLY, FAILS_TEMPORARILY, OUTCOME_UNKNOWN
from routing.audit.models import AuditEvent
from routing.inbound import service as inbound
from routing.page.models import EscalationTimer, Page
from routing.report import service as report_service
from routing.report.models import Report
from routing.report.schemas import ReportCreate
from tests.harness import CHAT, SMS, VOICE, Harness, types
from tests.scenarios.twilio_harness import ANNA, BRAM, Twilio, tw

__all__ = ["tw"]

WINDOW = timedelta(seconds=900)  # the default SMS window: at most 5 messages per person


async def _submit(h: Harness, numbers: range) -> list[Report]:
    """Reports from as many different customers, stored in one transaction (a burst)."""
    async with h.container.db.begin() as session:
        stored = []
        for n in numbers:
            data = ReportCreate.model_validate(
                {"category": "fraud", "callback_phone": f"+3163{n:07d}", "customer_ref": f"c{n}"}
            )
            report, _ = await report_service.submit(
                session, data=data, now=h.clock.now(), sla_seconds=600
            )
            stored.append(report)
    h.container.engine.trigger()
    return stored


async def _reply(h: Harness, phone: str, body: str) -> str:
    """A staff member texts us, handled as the inbound SMS webhook does."""
    async with h.container.db.begin() as session:
        staff = await inbound.staff_by_phone(session, phone)
        reply = await inbound.staff_sms(session, staff=staff, body=body, now=h.clock.now())
    h.container.engine.trigger()
    assert reply is not None
    return reply


async def _pages(h: Harness, *where: Any) -> list[Page]:
    async with h.container.db() as session:
        return list(await session.scalars(select(Page).where(*where).order_by(Page.id)))


def _link(page: OutboundPage) -> str:
    found = re.search(r"/ack/(\S+)$", page.text)
    assert found, f"no accept link in {page.text!r}"
    return found.group(1)


def _count(page: OutboundPage) -> int:
    found = re.match(r"SOS: (\d+) open (?:emergencies|noodmeldingen), ", page.text)
    assert found, f"not a bundle text: {page.text!r}"
    return int(found.group(1))


# --- calls: one at a time per person --------------------------------------------------------


async def test_a_second_call_to_anna_rings_only_after_her_first_call_ended(h: Harness) -> None:
    await h.staff("Anna")
    await h.chain(("voice", ["Anna"], 60))
    await h.report(callback_phone="06 11111111")
    await h.tick()
    (first,) = h.expect(("Anna", VOICE))
    h.clock.advance(1)
    second = await h.report(callback_phone="06 22222222")

    await h.advance(20)
    h.expect_none()  # her phone is still ringing for the first report

    await h.call_ends(first)
    ended_at = h.clock.now()
    await h.advance(5)

    (call,) = h.expect(("Anna", VOICE))
    assert call.reference == second["reference"]
    (page,) = await _pages(h, Page.id == call.page_id)
    assert page.sent_at is not None
    assert page.sent_at >= ended_at  # never two at once
    assert page.tries == 1  # waiting was not a try
    assert types(await h.get(str(second["id"]))) == ["received", "page_queued", "page_sent"]


async def test_a_lost_call_status_holds_her_phone_for_two_minutes_at_most(h: Harness) -> None:
    await h.staff("Anna")
    await h.chain(("voice", ["Anna"], 60))
    await h.report(callback_phone="06 11111111")
    await h.tick()
    h.expect(("Anna", VOICE))
    h.clock.advance(1)
    await h.report(callback_phone="06 22222222")

    await h.advance(115)  # the first call's status never arrives
    h.expect_none()
    await h.advance(10)
    h.expect(("Anna", VOICE))


async def test_of_two_calls_due_together_the_report_closest_to_its_deadline_rings(
    h: Harness,
) -> None:
    await h.staff("Anna")
    await h.chain(("voice", ["Anna"], 60))
    first = await h.report(callback_phone="06 11111111")
    h.clock.advance(1)
    urgent = await h.report(callback_phone="06 22222222")
    # The second customer's call reached the SOS line first: their promise runs out sooner.
    sooner = datetime.fromisoformat(first["deadline_at"]) - timedelta(seconds=30)
    async with h.container.db.begin() as session:
        await session.execute(
            update(Report).where(Report.id == urgent["id"]).values(deadline_at=sooner)
        )

    await h.tick()  # both calls are claimed in one batch

    (call,) = h.expect(("Anna", VOICE))
    assert call.reference == urgent["reference"]
    assert len(await _pages(h, Page.state == "pending")) == 1


async def test_claims_serve_the_reports_closest_to_their_deadline_first(h: Harness) -> None:
    await h.staff("Anna", chat_id="U1")
    await h.chain(("chat", ["Anna"], 60))
    reports = await _submit(h, range(51))  # one more than a claim takes
    urgent = reports[-1]
    async with h.container.db.begin() as session:
        await session.execute(
            update(Report)
            .where(Report.id == urgent.id)
            .values(deadline_at=urgent.deadline_at - timedelta(seconds=30))
        )
    await h.route()  # every report's step 1 is paged (pending)
    dispatcher = h.container.engine.modules[1]
    assert dispatcher.name == "dispatcher"

    await dispatcher.run_once(h.container.db, h.clock.now())  # one claim

    first = h.sender.take()
    assert len(first) == 50
    assert urgent.reference in {p.reference for p in first}
    await h.tick()
    assert len(h.expect(("Anna", CHAT))) == 1


# --- SMS: a window per person, then one bundled message --------------------------------------


async def test_after_five_sms_the_rest_wait_and_go_out_as_one_bundle(h: Harness) -> None:
    await h.staff("Anna", ANNA, languages=["en"])
    await h.chain(("sms", ["Anna"], 60))
    singles = []
    for n in range(5):
        singles.append(await h.report(callback_phone=f"06 1000000{n}"))
        await h.tick()
        (page,) = h.expect(("Anna", SMS))
        assert page.text.startswith(f"SOS fraud, report {singles[-1]['reference']}.")
        await h.advance(10)
    waiting = []
    for n in range(4):
        waiting.append(await h.report(callback_phone=f"06 2000000{n}"))
        await h.advance(10)
    h.expect_none()

    await h.advance(900 - 90 - 1)  # the first SMS went at 0 s: its slot frees at 900 s
    h.expect_none()
    await h.advance(1)

    (message,) = h.expect(("Anna", SMS))
    assert message.text.startswith("SOS: 4 open emergencies, reply 1 to take the oldest. ")
    assert message.reference == waiting[0]["reference"]  # the closest deadline carries it
    pages = await _pages(h, Page.report_id.in_([r["id"] for r in waiting]))
    assert {p.state for p in pages} == {"sent"}
    assert {p.bundle_id for p in pages} == {message.page_id}
    assert len({p.external_id for p in pages}) == 1
    for report in waiting:
        sent = [e for e in (await h.get(str(report["id"])))["timeline"] if e["type"] == "page_sent"]
        assert [e["detail"] for e in sent] == ["SMS to Anna sent (one message for 4 reports)"]

    # A bare "1" takes the open report closest to its deadline that she was sent, and says so.
    reply = await _reply(h, ANNA, "1")
    assert reply.startswith(f"Accepted: report {singles[0]['reference']} ")
    # The bundle's link takes the bundle's most urgent report.
    accepted = await h.client.post(f"/ack/{_link(message)}")
    assert accepted.status_code == 200
    assert str(waiting[0]["reference"]) in accepted.text
    assert (await h.get(str(waiting[0]["id"])))["acknowledged_by"]["name"] == "Anna"


async def test_sms_pages_due_together_go_out_as_one_message_at_once(h: Harness) -> None:
    await h.staff("Anna", ANNA)
    await h.chain(("sms", ["Anna"], 60))
    await _submit(h, range(3))
    await h.tick()
    (message,) = h.expect(("Anna", SMS))
    assert message.text.startswith("SOS: 3 open noodmeldingen, antwoord 1 om de oudste aan ")


async def test_a_bundle_link_takes_the_next_report_when_its_carrier_was_taken(h: Harness) -> None:
    await h.staff("Anna", ANNA, languages=["en"])
    await h.staff("Bram", BRAM)
    await h.chain(("sms", ["Anna"], 60))
    first = await h.report(callback_phone="06 10000001")
    h.clock.advance(1)
    second = await h.report(callback_phone="06 10000002")
    h.clock.advance(1)
    await h.report(callback_phone="06 10000003")
    await h.tick()
    (message,) = h.expect(("Anna", SMS))
    assert message.reference == first["reference"]
    assert (await h.ack(str(first["id"]), "Bram")).status_code == 200

    shown = await h.client.get(f"/ack/{_link(message)}")
    assert str(second["reference"]) in shown.text
    accepted = await h.client.post(f"/ack/{_link(message)}")

    assert accepted.status_code == 200
    assert (await h.get(str(second["id"])))["acknowledged_by"]["name"] == "Anna"
    assert (await h.get(str(first["id"])))["acknowledged_by"]["name"] == "Bram"


async def test_accepting_moves_on_when_the_closest_report_was_taken_a_moment_ago(
    h: Harness,
) -> None:
    await h.staff("Anna", ANNA, languages=["en"])
    await h.staff("Bram", BRAM)
    await h.chain(("sms", ["Anna"], 60))
    reports = await _submit(h, range(2))
    await h.tick()
    h.expect(("Anna", SMS))
    pages = {p.report_id: p.id for p in await _pages(h)}
    # Bram takes the first between Anna's choice of candidates and her acceptance.
    assert (await h.ack(reports[0].id, "Bram")).status_code == 200

    async with h.container.db.begin() as session:
        result = await inbound.accept_first(
            session,
            page_ids=[pages[reports[0].id], pages[reports[1].id]],
            now=h.clock.now(),
            via="SMS reply",
        )

    assert result.won
    assert result.report.id == reports[1].id


async def test_ack_with_a_reference_still_takes_exactly_that_report(h: Harness) -> None:
    await h.staff("Anna", ANNA, languages=["en"])
    await h.chain(("sms", ["Anna"], 60))
    reports = []
    for n in range(3):
        reports += await _submit(h, range(n, n + 1))
        h.clock.advance(1)
    await h.tick()
    (message,) = h.expect(("Anna", SMS))
    assert message.reference == reports[0].reference
    newest = reports[-1]
    reply = await _reply(h, ANNA, f"ack {newest.reference.lower()}")
    assert reply.startswith(f"Accepted: report {newest.reference} ")
    async with h.container.db() as session:
        taken = await session.scalars(select(Report.id).where(Report.acknowledged_at.is_not(None)))
        assert list(taken) == [newest.id]


# --- a bundle's delivery updates are every page's ------------------------------------------------


async def test_a_failed_bundle_fails_every_page_in_it_and_each_report_moves_on(
    tw: Twilio,
) -> None:
    await tw.h.staff("Anna", ANNA)
    await tw.h.staff("Bram", BRAM, languages=["en"])
    await tw.h.chain(("sms", ["Anna"], 60), ("sms", ["Bram"], 60))
    reports = await _submit(tw.h, range(3))
    await tw.h.tick()
    anna = await tw.fake.expect_sms(to=ANNA)
    assert anna.body.startswith("SOS: 3 open noodmeldingen")

    await anna.undeliver(error_code=30003)  # one callback, carrying the carrier's page id
    await tw.h.tick()

    bram = await tw.fake.expect_sms(to=BRAM)  # every report fell back at once, bundled again
    assert bram.body.startswith("SOS: 3 open emergencies")
    for report in reports:
        seen = await tw.h.get(report.id)
        failed = [e for e in seen["timeline"] if e["type"] == "page_failed"]
        assert len(failed) == 1
        assert "SMS undelivered (error 30003)" in failed[0]["detail"]
        assert "escalated" in types(seen)
    await bram.deliver()
    states = Counter(p.state for p in await _pages(tw.h, Page.channel == SMS))
    assert states == {"failed": 3, "delivered": 3}


async def test_a_rejected_bundle_fails_every_page_in_it(h: Harness) -> None:
    await h.staff("Anna", ANNA)
    await h.staff("Bram", BRAM)
    await h.chain(("sms", ["Anna"], 60), ("sms", ["Bram"], 60))
    h.sender.script(FAILS_PERMANENTLY, channel=SMS)
    reports = await _submit(h, range(3))

    await h.tick()  # no clock movement: every report falls back at once

    (message,) = h.expect(("Bram", SMS))
    assert _count(message) == 3
    for report in reports:
        assert types(await h.get(report.id)).count("page_failed") == 1


async def test_a_bundle_that_meets_a_temporary_error_is_retried_whole(h: Harness) -> None:
    await h.staff("Anna", ANNA)
    await h.chain(("sms", ["Anna"], 60))
    h.sender.script(FAILS_TEMPORARILY, channel=SMS)
    await _submit(h, range(3))
    await h.tick()
    h.expect_none()
    assert {p.state for p in await _pages(h)} == {"pending"}

    await h.advance(2)

    (message,) = h.expect(("Anna", SMS))
    assert _count(message) == 3
    pages = await _pages(h)
    assert {(p.state, p.bundle_id) for p in pages} == {("sent", message.page_id)}


async def test_an_unknown_bundle_the_provider_never_got_is_sent_again_whole(h: Harness) -> None:
    await h.staff("Anna", ANNA)
    await h.chain(("sms", ["Anna"], 600))
    h.sender.script(OUTCOME_UNKNOWN, channel=SMS)
    await _submit(h, range(3))
    await h.tick()
    h.expect_none()

    await h.advance(30)  # the reconciler asks: the provider has no such message

    (message,) = h.expect(("Anna", SMS))
    assert _count(message) == 3
    assert {p.state for p in await _pages(h)} == {"sent"}


async def test_riders_go_out_again_when_their_unknown_carrier_is_accepted_meanwhile(
    h: Harness,
) -> None:
    await h.staff("Anna", ANNA)
    await h.staff("Bram", BRAM)
    await h.chain(("sms", ["Anna"], 600))
    h.sender.script(OUTCOME_UNKNOWN, channel=SMS)
    reports = []
    for n in range(3):
        reports += await _submit(h, range(n, n + 1))
        h.clock.advance(1)
    await h.tick()
    h.expect_none()
    (carrier,) = await _pages(h, Page.state == "unknown")
    assert carrier.report_id == reports[0].id

    assert (await h.ack(reports[0].id, "Bram")).status_code == 200
    await h.advance(30)  # the reconciler asks: the provider never got it; the carrier is canceled

    (message,) = h.expect(("Anna", SMS))  # the other two are not left hanging
    assert _count(message) == 2
    states = Counter(p.state for p in await _pages(h))
    assert states == {"canceled": 1, "sent": 2}
    h.expect_accepted_text(reports[0], by="Bram")


async def test_riders_are_not_paged_twice_when_the_provider_took_their_unknown_bundle(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    await h.staff("Anna", ANNA)
    await h.staff("Bram", BRAM)
    await h.chain(("sms", ["Anna"], 600))
    first_send = h.sender.send

    async def answer_lost(page: OutboundPage) -> SendResult:
        monkeypatch.setattr(h.sender, "send", first_send)
        await first_send(page)  # the provider takes the bundle, but its answer never arrives
        raise OutcomeUnknownError("timeout")

    monkeypatch.setattr(h.sender, "send", answer_lost)
    reports = []
    for n in range(3):
        reports += await _submit(h, range(n, n + 1))
        h.clock.advance(1)
    await h.tick()
    (message,) = h.expect(("Anna", SMS))  # it reached Anna's phone
    assert _count(message) == 3
    assert (await h.ack(reports[0].id, "Bram")).status_code == 200  # the carrier's report

    await h.advance(30)  # the reconciler asks: the provider has the bundle

    h.expect_accepted_text(reports[0], by="Bram")
    h.expect_none()  # Anna is not paged again for the other two
    assert {p.state for p in await _pages(h)} == {"sent"}


async def test_a_rider_whose_report_was_accepted_meanwhile_is_not_sent_again(
    h: Harness,
) -> None:
    await h.staff("Anna", ANNA)
    await h.staff("Bram", BRAM)
    await h.chain(("sms", ["Anna"], 600))
    h.sender.script(OUTCOME_UNKNOWN, channel=SMS)
    reports = []
    for n in range(3):
        reports += await _submit(h, range(n, n + 1))
        h.clock.advance(1)
    await h.tick()
    h.expect_none()
    assert (await h.ack(reports[1].id, "Bram")).status_code == 200  # a rider's report
    await h.tick()
    h.expect_accepted_text(reports[1], by="Bram")

    await h.advance(30)  # the reconciler asks: the provider never got the bundle

    (message,) = h.expect(("Anna", SMS))
    assert _count(message) == 2  # the two reports nobody holds; not Bram's
    states = {p.report_id: p.state for p in await _pages(h)}
    assert states == {reports[0].id: "sent", reports[1].id: "canceled", reports[2].id: "sent"}


# --- the content guard --------------------------------------------------------------------------


async def test_an_iban_in_a_staff_name_never_reaches_the_wire(h: Harness) -> None:
    name = "Anna NL91 ABNA 0417 1643 00"
    await h.staff(name)
    await h.chain(("sms", [name], 60))
    single = await h.report(callback_phone="06 10000001")
    await h.tick()
    (page,) = h.expect(("Anna [IBAN]", SMS))
    await h.advance(10)
    await _submit(h, range(2))
    await h.tick()
    (bundled,) = h.expect(("Anna [IBAN]", SMS))

    for sent in (page, bundled):
        assert "0417" not in sent.text + sent.staff_name
    async with h.container.db() as session:
        events = list(
            await session.scalars(select(AuditEvent).where(AuditEvent.type == "content_blocked"))
        )
    assert len(events) == 3  # the single page's report and both reports of the bundle
    assert {e.report_id for e in events} >= {single["id"]}
    for event in events:
        assert event.data["found"] == ["iban"]
        assert "0417" not in event.detail + str(event.data)


# --- the wave ------------------------------------------------------------------------------------


async def test_a_wave_of_500_reports_is_bundled_and_nothing_is_lost(h: Harness) -> None:
    await h.staff("Anna", ANNA, languages=["en", "nl"])  # English texts; both speak Dutch
    await h.staff("Bram", BRAM)
    await h.chain(("sms", ["Anna", "Bram"], 300))
    start = h.clock.now()
    sent: dict[str, list[OutboundPage]] = {"Anna": [], "Bram": []}

    def take(*expected: tuple[str, Any]) -> None:
        for page in h.expect(*expected):
            sent[page.staff_name].append(page)

    # 500 reports from 500 customers, in ten bursts of 50, six seconds apart.
    reports: list[Report] = []
    for burst in range(10):
        reports += await _submit(h, range(burst * 50, burst * 50 + 50))
        await h.tick()
        if burst < 5:  # one bundled message per person per burst, until the window is full
            take(("Anna", SMS), ("Bram", SMS))
        else:
            h.expect_none()
        await h.advance(6)
    assert [_count(p) for p in sent["Anna"]] == [50] * 5
    assert [_count(p) for p in sent["Bram"]] == [50] * 5
    by_id = {r.id: r for r in reports}
    paged = {r.id for r in reports[:250]}  # their SMS went out; the other 250 wait

    # Anna and Bram take reports one by one, each a bare "1": always the most urgent one open.
    accepted: list[str] = []
    for turn in range(100):
        phone = ANNA if turn % 2 == 0 else BRAM
        reply = await _reply(h, phone, "1")
        taken = await _acknowledged_since(h, set(accepted))
        assert len(taken) == 1, reply
        report = by_id[taken[0]]
        assert report.id in paged
        assert report.reference in reply
        still_open = paged - {report.id} - set(accepted)
        assert report.deadline_at <= min(by_id[i].deadline_at for i in still_open)
        accepted.append(report.id)
        await h.advance(4)
        h.expect_accepted_text(report, by="Anna" if phone == ANNA else "Bram")
    h.expect_none()

    # The window frees a slot 900 s after the first message: one bundle covers every waiting page.
    await h.advance((start + WINDOW - h.clock.now()).total_seconds() - 1)
    h.expect_none()
    await h.advance(1)
    take(("Anna", SMS), ("Bram", SMS))
    assert _count(sent["Anna"][-1]) == _count(sent["Bram"][-1]) == 250
    first_waiting = reports[250]  # earliest deadline of the waiting ones, and paged first
    assert sent["Anna"][-1].reference == first_waiting.reference

    # "1" still takes the most urgent open report she was paged for; the link, the bundle's.
    reply = await _reply(h, ANNA, "1")
    (late,) = await _acknowledged_since(h, set(accepted))
    accepted.append(late)
    assert late in paged
    assert by_id[late].reference in reply
    page = await h.client.post(f"/ack/{_link(sent['Anna'][-1])}")
    assert page.status_code == 200
    (linked,) = await _acknowledged_since(h, set(accepted))
    accepted.append(linked)
    assert linked == first_waiting.id
    await h.tick()
    h.expect_accepted_text(by_id[late], by_id[linked], by="Anna")

    await h.advance(3600)
    h.expect_none()
    await _assert_nothing_lost(h, reports, accepted, sent)


async def _acknowledged_since(h: Harness, known: set[str]) -> list[str]:
    async with h.container.db() as session:
        rows = await session.scalars(select(Report.id).where(Report.acknowledged_at.is_not(None)))
        return [i for i in rows if i not in known]


async def _assert_nothing_lost(
    h: Harness,
    reports: list[Report],
    accepted: list[str],
    sent: dict[str, list[OutboundPage]],
) -> None:
    ids = [r.id for r in reports]
    message = func.coalesce(Page.bundle_id, Page.id)
    async with h.container.db() as session:
        stored = {
            row.id: row
            for row in await session.execute(
                select(Report.id, Report.acknowledged_at, Report.sla_met)
            )
        }
        deadline_timers = Counter(
            await session.scalars(
                select(EscalationTimer.report_id).where(EscalationTimer.kind == "deadline")
            )
        )
        missed = set(
            await session.scalars(
                select(AuditEvent.report_id).where(AuditEvent.type == "sla_missed")
            )
        )
        open_pages = await session.scalar(
            select(func.count())
            .select_from(Page)
            .where(Page.state.in_(("pending", "sending", "unknown")))
        )
        reached = Counter(
            await session.scalars(select(Page.report_id).where(Page.sent_at.is_not(None)))
        )
        messages = (
            await session.execute(
                select(Page.staff_id, message, func.min(Page.sent_at))
                .where(Page.sent_at.is_not(None))
                .group_by(Page.staff_id, message)
            )
        ).all()
        in_bundle = Counter(
            await session.scalars(select(Page.bundle_id).where(Page.bundle_id.is_not(None)))
        )

    assert sorted(stored) == sorted(ids), "every report is stored"
    assert all(deadline_timers[i] == 1 for i in ids), "every report has its deadline timer"
    for report_id in ids:
        row = stored[report_id]
        if report_id in accepted:
            assert row.acknowledged_at is not None
        else:  # nobody took it: the broken promise is on record
            assert row.sla_met is False
            assert report_id in missed
    assert len(accepted) == 102
    assert open_pages == 0, "no page is left waiting"
    assert all(reached[i] == 2 for i in ids), "every report reached both staff members"
    for staff_id in h.names.values():
        times = sorted(at for who, _, at in messages if who == staff_id)
        assert len(times) == 6
        for i, first in enumerate(times):
            assert sum(1 for t in times[i:] if t < first + WINDOW) <= 5, "more than 5 in 15 min"
    for pages in sent.values():
        for page in pages:
            assert _count(page) == in_bundle[page.page_id], "the text counts the bundle"
