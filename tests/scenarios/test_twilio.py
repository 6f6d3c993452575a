"""Twilio end to end: pages ring real-looking phones; keypresses, SMS replies, voicemail, STOP
and the SOS line drive the report, and the fake fails on any call or SMS nobody expected."""

from sqlalchemy import select

from routing.audit.models import AuditEvent
from routing.page.models import Page
from routing.staff.models import Staff
from tests.harness import types
from tests.scenarios.twilio_harness import ANNA, BRAM, CUSTOMER, SOS_NUMBER, Twilio, tw

__all__ = ["tw"]


async def _voice_then_sms(t: Twilio) -> dict[str, object]:
    await t.h.staff("Anna", ANNA)
    await t.h.staff("Bram", BRAM, languages=["en"])
    await t.h.chain(("voice", ["Anna"], 60), ("sms", ["Bram"], 60))
    report = await t.h.report(callback_phone="06 12345678")
    await t.h.tick()
    return report


async def test_accept_by_keypress_then_the_customer_is_called_into_the_room(tw: Twilio) -> None:
    report = await _voice_then_sms(tw)
    call = await tw.fake.expect_call(to=ANNA)
    assert call.from_ == SOS_NUMBER

    await call.answer()
    spoken = " ".join(call.heard)
    assert "fraude" in spoken
    assert ", ".join(str(report["reference"])) in spoken
    assert "12345678" not in spoken  # never the customer's number
    await call.press("1")

    assert call.conference == f"sos-{report['id']}"
    seen = await tw.h.get(str(report["id"]))
    assert seen["acknowledged_by"]["name"] == "Anna"
    assert seen["sla"]["met"] is True
    await tw.h.tick()
    customer = await tw.fake.expect_participant(to=CUSTOMER)
    assert customer.from_ == SOS_NUMBER  # never the staff member's own number
    assert customer.conference == call.conference
    await tw.expect_accepted_sms(report, by="Anna")  # "Anna ... belt u nu op dit nummer"
    await tw.h.advance(120)  # no SMS to Bram: the chain stopped at the keypress


async def test_no_answer_moves_on_to_the_next_step_at_once(tw: Twilio) -> None:
    await _voice_then_sms(tw)
    call = await tw.fake.expect_call(to=ANNA)
    await call.no_answer()
    await tw.h.tick()  # the fake clock has not moved: the fallback did not wait out 60 s
    sms = await tw.fake.expect_sms(to=BRAM)
    assert "Reply 1" in sms.body


async def test_answered_without_a_keypress_is_a_missed_page(tw: Twilio) -> None:
    report = await _voice_then_sms(tw)
    call = await tw.fake.expect_call(to=ANNA)
    await call.answer()
    await call.hang_up()
    await tw.h.tick()
    await tw.fake.expect_sms(to=BRAM)
    seen = await tw.h.get(str(report["id"]))
    assert seen["acknowledged_at"] is None
    assert "without a keypress" in " ".join(e["detail"] for e in seen["timeline"])


async def test_voicemail_is_not_a_human_and_is_hung_up(tw: Twilio) -> None:
    report = await _voice_then_sms(tw)
    call = await tw.fake.expect_call(to=ANNA)
    await call.answer(human=False)  # the answering machine picks up
    await tw.h.tick()
    await tw.fake.expect_sms(to=BRAM)
    assert call.ended_by == "api"
    seen = await tw.h.get(str(report["id"]))
    assert seen["acknowledged_at"] is None
    assert "voicemail" in " ".join(e["detail"] for e in seen["timeline"])


async def test_accept_by_sms_reply_then_both_are_called_into_the_room(tw: Twilio) -> None:
    await tw.h.staff("Anna", ANNA)
    await tw.h.chain(("sms", ["Anna"], 60))
    report = await tw.h.report()
    await tw.h.tick()
    sms = await tw.fake.expect_sms(to=ANNA)
    assert str(report["reference"]) in sms.body
    await sms.deliver()

    replies = await tw.fake.send_sms(from_=ANNA, body="  ok ", to=SOS_NUMBER)

    assert replies
    assert "Aangenomen" in replies[0]
    assert str(report["reference"]) in replies[0]
    assert (await tw.h.get(str(report["id"])))["acknowledged_by"]["name"] == "Anna"
    await tw.h.tick()
    await tw.fake.expect_participant(to=ANNA)
    await tw.fake.expect_participant(to=CUSTOMER)
    await tw.expect_accepted_sms(report, by="Anna")


async def test_sms_reply_with_a_reference_picks_that_report(tw: Twilio) -> None:
    await tw.h.staff("Anna", ANNA)
    await tw.h.chain(("sms", ["Anna"], 600))
    first = await tw.h.report()
    second = await tw.h.report()
    await tw.h.tick()
    sms = await tw.fake.expect_sms(to=ANNA)  # due together: one bundled message
    assert "2 open noodmeldingen" in sms.body

    # The reference wins over "the oldest": the newer report is taken.
    replies = await tw.fake.send_sms(
        from_=ANNA, body=f"ack {second['reference'].lower()}", to=SOS_NUMBER
    )

    assert str(second["reference"]) in replies[0]
    assert (await tw.h.get(str(second["id"])))["acknowledged_by"] is not None
    assert (await tw.h.get(str(first["id"])))["acknowledged_by"] is None
    await tw.h.tick()
    await tw.fake.expect_participant(to=ANNA)
    await tw.fake.expect_participant(to=str(second["callback_phone"]))
    await tw.expect_accepted_sms(second, by="Anna")


async def test_second_acceptor_hears_who_has_it_and_other_calls_end(tw: Twilio) -> None:
    await tw.h.staff("Anna", ANNA)
    await tw.h.staff("Bram", BRAM, languages=["en", "nl"])  # English prompts, speaks Dutch too
    await tw.h.chain(("voice", ["Anna", "Bram"], 60))
    report = await tw.h.report()
    await tw.h.tick()
    anna = await tw.fake.expect_call(to=ANNA)
    bram = await tw.fake.expect_call(to=BRAM)
    await anna.answer()
    await bram.answer()
    await anna.press("1")
    await bram.press("1")
    assert "already been accepted by Anna" in bram.heard[-1]

    late = await tw.fake.send_sms(from_=BRAM, body="1", to=SOS_NUMBER)
    assert "Anna" in late[0]
    await tw.h.tick()
    await tw.fake.expect_participant(to=CUSTOMER)
    await tw.expect_accepted_sms(report, by="Anna")  # one SMS: Bram's late tries change nothing


async def test_ringing_calls_end_when_someone_accepts(tw: Twilio) -> None:
    await tw.h.staff("Anna", ANNA)
    await tw.h.staff("Bram", BRAM)
    await tw.h.chain(("voice", ["Anna", "Bram"], 60))
    report = await tw.h.report()
    await tw.h.tick()
    anna = await tw.fake.expect_call(to=ANNA)
    bram = await tw.fake.expect_call(to=BRAM)
    await bram.ring()
    await anna.answer()
    await anna.press("1")
    await tw.h.tick()
    await tw.fake.flush()
    assert bram.ended_by == "api"
    await tw.fake.expect_participant(to=CUSTOMER)
    await tw.expect_accepted_sms(report, by="Anna")


async def test_stop_turns_sms_off_and_paging_goes_on_by_voice(tw: Twilio) -> None:
    await tw.h.staff("Anna", ANNA)
    await tw.h.chain(("sms", ["Anna"], 60), ("voice", ["Anna"], 60))

    assert await tw.fake.send_sms(from_=ANNA, body="STOP", to=SOS_NUMBER) == []
    report = await tw.h.report()
    await tw.h.tick()

    await tw.fake.expect_call(to=ANNA)  # at once: the SMS step cannot reach her
    async with tw.h.container.db() as session:
        staff = await session.scalar(select(Staff).where(Staff.name == "Anna"))
        assert staff is not None
        assert staff.sms_stopped_at is not None
        notice = await session.scalar(
            select(AuditEvent).where(AuditEvent.type == "staff_sms_stopped")
        )
        assert notice is not None
    assert "SMS turned off" in " ".join(
        e["detail"] for e in (await tw.h.get(str(report["id"])))["timeline"]
    )

    listed = (await tw.h.client.get("/v1/staff", headers=tw.h.admin)).json()
    assert listed[0]["sms_stopped_at"] is not None  # the admins see it

    replies = await tw.fake.send_sms(from_=ANNA, body="START", to=SOS_NUMBER)
    assert replies
    listed = (await tw.h.client.get("/v1/staff", headers=tw.h.admin)).json()
    assert listed[0]["sms_stopped_at"] is None


async def test_undelivered_sms_moves_on_at_once(tw: Twilio) -> None:
    await tw.h.staff("Anna", ANNA)
    await tw.h.staff("Bram", BRAM)
    await tw.h.chain(("sms", ["Anna"], 60), ("voice", ["Bram"], 60))
    await tw.h.report()
    await tw.h.tick()
    sms = await tw.fake.expect_sms(to=ANNA)
    await sms.undeliver(error_code=30003)
    await tw.h.tick()
    await tw.fake.expect_call(to=BRAM)


async def test_duplicate_and_out_of_order_callbacks_change_nothing(tw: Twilio) -> None:
    await tw.h.staff("Anna", ANNA)
    await tw.h.staff("Bram", BRAM)
    await tw.h.chain(("sms", ["Anna"], 60), ("voice", ["Bram"], 60))
    report = await tw.h.report()
    await tw.h.tick()
    sms = await tw.fake.expect_sms(to=ANNA, duplicate=True)
    await sms.deliver(out_of_order=True)
    await tw.h.tick()
    seen = await tw.h.get(str(report["id"]))
    assert types(seen).count("page_delivered") == 1
    assert "page_failed" not in types(seen)
    await tw.h.advance(60)
    await tw.fake.expect_call(to=BRAM)


async def test_rejected_number_moves_on_without_retrying_it(tw: Twilio) -> None:
    await tw.h.staff("Anna", ANNA)
    await tw.h.staff("Bram", BRAM)
    await tw.h.chain(("sms", ["Anna"], 60), ("voice", ["Bram"], 60))
    tw.fake.fail_next("Messages", 400, 21614)
    report = await tw.h.report()
    await tw.h.tick()
    await tw.fake.expect_call(to=BRAM)
    assert "21614" in " ".join(e["detail"] for e in (await tw.h.get(str(report["id"])))["timeline"])


async def test_rate_limited_send_is_retried_once_twilio_allows(tw: Twilio) -> None:
    await tw.h.staff("Anna", ANNA)
    await tw.h.chain(("voice", ["Anna"], 60))
    tw.fake.fail_next("Calls", 429, 20429, retry_after=1)
    await tw.h.report()
    await tw.h.tick()
    assert tw.fake.calls_to(ANNA) == []
    await tw.h.advance(1)
    await tw.fake.expect_call(to=ANNA)


async def test_forged_signature_is_refused_and_changes_nothing(tw: Twilio) -> None:
    await tw.h.staff("Anna", ANNA)
    params = {"MessageSid": "SM" + "0" * 32, "From": CUSTOMER, "To": SOS_NUMBER, "Body": "help"}
    forged = await tw.h.client.post(
        "/webhooks/twilio/sms", data=params, headers={"X-Twilio-Signature": "forged="}
    )
    unsigned = await tw.h.client.post("/webhooks/twilio/sms", data=params)
    assert forged.status_code == 403
    assert unsigned.status_code == 403
    async with tw.h.container.db() as session:
        about_reports = AuditEvent.report_id.is_not(None)  # the admin's setup is logged too
        assert await session.scalar(select(AuditEvent.id).where(about_reports)) is None


async def test_customer_sms_opens_a_report_and_more_sms_join_it(tw: Twilio) -> None:
    await tw.h.staff("Anna", ANNA)
    await tw.h.chain(("voice", ["Anna"], 60))
    replies = await tw.fake.send_sms(
        from_=CUSTOMER, body="Er wordt geld afgeschreven!", to=SOS_NUMBER
    )
    assert replies == []  # the receipt comes from the outbox, after the commit
    more = await tw.fake.send_sms(from_=CUSTOMER, body="Nog een afschrijving", to=SOS_NUMBER)
    assert "toegevoegd" in more[0]
    await tw.h.tick()
    await tw.fake.expect_call(to=ANNA)
    receipt = await tw.fake.expect_sms(to=CUSTOMER)  # one receipt for the one report
    assert "ontvangen" in receipt.body
    assert "10 minuten" in receipt.body
    async with tw.h.container.db() as session:
        from routing.report.models import Report

        reports = list(await session.scalars(select(Report)))
    assert len(reports) == 1
    assert reports[0].channel == "sms"
    assert "Nog een afschrijving" in (reports[0].description or "")


async def test_an_sms_page_whose_send_timed_out_is_settled_by_its_sent_callback(
    tw: Twilio,
) -> None:
    await tw.h.staff("Anna", ANNA)
    await tw.h.staff("Bram", BRAM)
    await tw.h.chain(("sms", ["Anna"], 60), ("voice", ["Bram"], 60))
    tw.fake.hang_next("Messages")  # Twilio took the SMS, but our request timed out
    report = await tw.h.report()
    await tw.h.tick()
    await tw.h.advance(10)
    sms = await tw.fake.expect_sms(to=ANNA)  # exactly one: no blind second create
    async with tw.h.container.db() as session:
        (page,) = (await session.scalars(select(Page))).all()
    assert page.state == "unknown"

    await sms.mark_sent()

    async with tw.h.container.db() as session:
        (page,) = (await session.scalars(select(Page))).all()
    assert (page.state, page.external_id) == ("sent", sms.sid)
    seen = await tw.h.get(str(report["id"]))
    assert types(seen)[-2:] == ["page_unknown", "page_sent"]
    await tw.h.advance(49)  # nothing to reconcile, nothing resent, no flag
    tw.fake.assert_clean()
    await tw.h.advance(1)
    await tw.fake.expect_call(to=BRAM)


async def test_timed_out_create_is_never_repeated_and_its_callback_settles_it(tw: Twilio) -> None:
    await tw.h.staff("Anna", ANNA)
    await tw.h.staff("Bram", BRAM)
    await tw.h.chain(("voice", ["Anna"], 60), ("sms", ["Bram"], 60))
    tw.fake.hang_next("Calls")  # Twilio made the call, but our request timed out
    report = await tw.h.report()
    await tw.h.tick()
    await tw.h.advance(5)
    call = await tw.fake.expect_call(to=ANNA)  # exactly one call: no blind second create

    await call.answer()
    await call.press("1")

    seen = await tw.h.get(str(report["id"]))
    assert seen["acknowledged_by"]["name"] == "Anna"
    assert "page_unknown" in types(seen)
    await tw.h.tick()
    await tw.fake.expect_participant(to=CUSTOMER)
    await tw.expect_accepted_sms(report, by="Anna")
