"""The SOS phone line: a caller reaches a person, the promise counts from the first ring, and a
caller who hangs up is called back when a colleague accepts."""

from datetime import datetime, timedelta

from sqlalchemy import select

from routing.report.models import Report
from tests.scenarios.twilio_harness import ANNA, CUSTOMER, SOS_NUMBER, Twilio, tw

__all__ = ["tw"]


async def _only_report(t: Twilio) -> Report:
    async with t.h.container.db() as session:
        (report,) = list(await session.scalars(select(Report)))
    return report


async def _call_in(t: Twilio, *keys: str) -> tuple[object, Report]:
    arrived = t.h.clock.now()
    call = await t.fake.incoming_call(from_=CUSTOMER, to=SOS_NUMBER)
    assert "Welkom" in " ".join(call.heard)
    for key in keys:
        t.h.clock.advance(10)  # the caller takes time over the menu
        await call.press(key)
    report = await _only_report(t)
    assert report.received_at == arrived, "the promise clock starts when the call arrived"
    return call, report


async def test_caller_reports_fraud_and_the_acceptor_joins_them(tw: Twilio) -> None:
    await tw.h.staff("Anna", ANNA)
    await tw.h.chain(("voice", ["Anna"], 60))

    caller, report = await _call_in(tw, "2", "1")  # English, fraud

    assert report.channel == "sos_line"
    assert report.category == "fraud"
    assert report.language == "en"
    assert report.callback_phone == CUSTOMER
    assert report.deadline_at == report.received_at + timedelta(seconds=600)
    spoken = " ".join(caller.heard)
    assert ", ".join(report.reference) in spoken
    assert caller.conference == f"sos-{report.id}"

    await tw.h.tick()
    anna = await tw.fake.expect_call(to=ANNA)
    receipt = await tw.expect_receipt(report)
    assert "within 10 minutes" in receipt.body  # in the language the caller chose
    await anna.answer()
    await anna.press("1")
    assert anna.conference == caller.conference
    await tw.h.tick()  # the caller is holding in the room: nobody else is called, nor texted


async def test_silence_in_the_menu_still_pages_someone(tw: Twilio) -> None:
    await tw.h.staff("Anna", ANNA)
    await tw.h.chain(("voice", ["Anna"], 60))
    call = await tw.fake.incoming_call(from_=CUSTOMER, to=SOS_NUMBER)
    for _ in range(4):
        await call.no_input()
    report = await _only_report(tw)
    assert report.category == "fraud"
    assert report.language == "nl"
    assert call.conference == f"sos-{report.id}"
    await tw.h.tick()
    await tw.fake.expect_call(to=ANNA)
    await tw.expect_receipt(report)


async def test_caller_who_hangs_up_is_called_back_on_accept(tw: Twilio) -> None:
    await tw.h.staff("Anna", ANNA)
    await tw.h.chain(("voice", ["Anna"], 60))
    caller, report = await _call_in(tw, "1", "2")  # Dutch, lost card
    assert report.category == "lost_card"
    await tw.h.tick()
    anna = await tw.fake.expect_call(to=ANNA)
    await tw.expect_receipt(report)

    await caller.hang_up()
    left = await tw.signed_post(
        f"/webhooks/twilio/rooms/{report.id}",
        {
            "StatusCallbackEvent": "participant-leave",
            "CallSid": caller.sid,
            "ConferenceSid": "CF" + "0" * 32,
            "FriendlyName": f"sos-{report.id}",
        },
    )
    assert left.status_code == 204

    await anna.answer()
    await anna.press("1")
    await tw.h.tick()
    callback = await tw.fake.expect_participant(to=CUSTOMER)
    assert callback.from_ == SOS_NUMBER
    assert callback.conference == f"sos-{report.id}"
    told = await tw.expect_accepted_sms(report, by="Anna")  # the caller left: their phone rings
    assert "passenteam" in told.body


async def test_the_same_call_webhook_twice_makes_one_report(tw: Twilio) -> None:
    await tw.h.staff("Anna", ANNA)
    await tw.h.chain(("voice", ["Anna"], 60))
    call, report = await _call_in(tw, "1", "1")
    replay = await tw.signed_post(
        "/webhooks/twilio/voice/category?lang=nl&try=1",
        {
            "CallSid": call.sid,
            "From": CUSTOMER,
            "To": SOS_NUMBER,
            "Digits": "1",
        },
    )
    assert replay.status_code == 200
    assert replay.headers["content-type"].startswith("text/xml")
    assert (await _only_report(tw)).id == report.id
    assert isinstance(report.received_at, datetime)
    await tw.h.tick()
    await tw.fake.expect_call(to=ANNA)
    await tw.expect_receipt(report)  # one report, one receipt
