"""The outbound-content guard on the wire: a staff name that holds an IBAN (a typo, a paste, a
prank) never reaches an SMS, a spoken call or a chat message. The safe version goes out, and a
`content_blocked` event names what was removed, never the content itself."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from app.container import Container
from routing.audit.models import AuditEvent
from routing.notify import service as notify
from routing.report.models import Report
from tests.harness import SMS, Harness
from tests.notify.support import CUSTOMER, in_tx, staff_named, submit
from tests.scenarios.test_slack import ANNA_CHAT, BRAM_CHAT, Slack, sl
from tests.scenarios.twilio_harness import ANNA, BRAM, SOS_NUMBER, Twilio, tw

__all__ = ["sl", "tw"]

IBAN = "NL91ABNA0417164300"
IBAN_NAME = f"{IBAN} Jansen"  # the first name, as customers see it, is the IBAN
NAME_WITH_IBAN = f"Anna {IBAN}"


async def blocked_events(container: Container) -> list[AuditEvent]:
    async with container.db() as session:
        return list(
            await session.scalars(
                select(AuditEvent)
                .where(AuditEvent.type == "content_blocked")
                .order_by(AuditEvent.id)
            )
        )


def assert_names_no_content(event: AuditEvent) -> None:
    assert IBAN not in event.detail
    assert IBAN not in str(event.data)
    assert event.data["found"] == ["iban"]


async def accept_for(container: Container, report: Report, staff_id: str) -> None:
    staff = await staff_named(container, staff_id)

    async def use_case(session: Any) -> object:
        return await notify.queue_accepted(
            session, report=report, staff=staff, now=container.clock.now()
        )

    await in_tx(container, use_case)


class TestCustomerSms:
    async def test_the_accepted_sms_goes_out_without_the_iban(
        self, h: Harness, container: Container
    ) -> None:
        report = await submit(container)
        await h.tick()
        assert "ontvangen" in h.expect_customer_text(report).body  # the SOS line's receipt
        await accept_for(container, report, await h.staff(IBAN_NAME))

        await h.tick()

        [sms] = h.expect_texts((CUSTOMER, SMS))
        assert IBAN not in sms.body
        assert "[IBAN] van het fraudeteam belt u nu" in sms.body
        [event] = await blocked_events(container)
        assert event.report_id == report.id
        assert event.detail == "removed iban from the accepted SMS before sending"
        assert_names_no_content(event)
        timeline = await h.get(report.id)
        assert "content_blocked" in [e["type"] for e in timeline["timeline"]]

    async def test_through_twilio_messages_json_never_carries_it(self, tw: Twilio) -> None:
        report = await submit(tw.h.container)
        await tw.h.tick()
        await tw.expect_receipt(report)  # the SOS line's receipt, queued at intake
        await accept_for(tw.h.container, report, await tw.h.staff(IBAN_NAME, ANNA))

        await tw.h.tick()

        sms = await tw.fake.expect_sms(to=CUSTOMER)
        assert "[IBAN] van het fraudeteam belt u nu" in sms.body
        assert IBAN not in str(sms.form)
        assert len(await blocked_events(tw.h.container)) == 1


class TestSpokenAndReplied:
    async def test_a_late_acceptor_never_hears_it_nor_reads_it(self, tw: Twilio) -> None:
        await tw.h.staff(NAME_WITH_IBAN, ANNA)
        await tw.h.staff("Bram", BRAM, languages=["en", "nl"])  # English prompts, speaks Dutch
        await tw.h.chain(("voice", [NAME_WITH_IBAN, "Bram"], 60))
        report = await tw.h.report()
        await tw.h.tick()
        anna = await tw.fake.expect_call(to=ANNA)
        bram = await tw.fake.expect_call(to=BRAM)
        await anna.answer()
        await bram.answer()
        await anna.press("1")

        await bram.press("1")
        late = await tw.fake.send_sms(from_=BRAM, body="1", to=SOS_NUMBER)

        assert bram.heard[-1] == "This report has already been accepted by Anna [IBAN]. Thank you."
        assert late == [f"Report {report['reference']} has already been accepted by Anna [IBAN]."]
        events = await blocked_events(tw.h.container)
        assert [(e.report_id, e.data["where"]) for e in events] == [
            (report["id"], "a voice page"),  # the page itself, guarded when it was sent
            (report["id"], "spoken TwiML"),
            (None, "an SMS reply to staff"),
        ]
        for event in events:
            assert_names_no_content(event)
        await tw.h.tick()
        await tw.fake.expect_participant(to="+31612345678")  # the customer joins Anna
        sms = await tw.expect_accepted_sms(report, by=NAME_WITH_IBAN)
        assert IBAN not in sms.body


class TestChat:
    async def test_the_accepted_chat_message_never_shows_it(self, sl: Slack) -> None:
        await sl.h.staff(NAME_WITH_IBAN, "+31611111111", chat_id=ANNA_CHAT)
        await sl.h.staff("Bram", "+31622222222", chat_id=BRAM_CHAT)
        await sl.h.chain(("chat", [NAME_WITH_IBAN, "Bram"], 60))
        report = await sl.h.report()
        await sl.h.tick()
        anna = sl.fake.expect_post(channel=ANNA_CHAT)
        bram = sl.fake.expect_post(channel=BRAM_CHAT)

        await sl.fake.click(anna, user=ANNA_CHAT)
        await sl.fake.click(bram, user=BRAM_CHAT)

        update = sl.fake.expect_update(anna)
        told = sl.fake.expect_ephemeral(user=BRAM_CHAT)
        assert update.text == "Accepted by Anna [IBAN]"
        assert IBAN not in anna.shown()
        assert told.text == "Anna [IBAN] already has it"
        events = await blocked_events(sl.h.container)
        assert [e.data["where"] for e in events] == [
            "a chat page",  # the page itself, guarded when it was sent
            "a chat message",
            "a chat message",
        ]
        for event in events:
            assert event.report_id == report["id"]
            assert_names_no_content(event)
        await sl.h.tick()  # the voice bridge (scripted): staff and customer legs
        assert {c.leg for c in sl.h.sender.room_calls} == {"staff", "customer"}
        [sms] = sl.h.expect_accepted_text(report, by=NAME_WITH_IBAN)
        assert IBAN not in sms.body
