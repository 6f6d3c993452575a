"""Customer texts end to end: a text queued in a transaction leaves only after the commit, sent by
the engine's Messenger; temporary errors are retried, permanent ones fail on the report's
timeline, and a text whose outcome is unknown is never sent twice. Through the scripted sender
and through the real Twilio adapter against the fake Twilio."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import update

from app.container import Container
from providers.base import Channel, OutboundText, SendResult
from providers.fake import (
    FAILS_PERMANENTLY,
    FAILS_TEMPORARILY,
    OUTCOME_UNKNOWN,
    ScriptedSender,
)
from providers.registry import ProviderRegistry
from routing.engine.messenger import Messenger
from routing.notify import service as notify
from routing.notify.models import OutboundMessage
from routing.report.models import Report
from tests.harness import SMS, Harness, types
from tests.notify.support import CUSTOMER, messages, staff_named, submit
from tests.scenarios.twilio_harness import PUBLIC, SOS_NUMBER, Twilio, tw

__all__ = ["tw"]


async def queue_receipt(container: Container, report: Report) -> int:
    async with container.db.begin() as session:
        message = await notify.queue_receipt(session, report=report, now=container.clock.now())
    assert message is not None
    return message.id


async def only_message(container: Container) -> OutboundMessage:
    [message] = await messages(container)
    return message


# --- through the scripted sender ---------------------------------------------------------------


class TestSentAfterCommit:
    async def test_the_receipt_leaves_once_the_engine_runs(
        self, h: Harness, container: Container, sender: ScriptedSender
    ) -> None:
        report = await submit(container, channel="sos_line")
        await queue_receipt(container, report)
        assert sender.texts == []  # queued, not sent: only the engine sends

        await h.tick()

        [text] = h.expect_texts((CUSTOMER, SMS))
        assert text.body.startswith(f"SOS-melding {report.reference} ontvangen.")
        assert text.language == "nl"
        message = await only_message(container)
        assert (message.state, message.tries, message.provider) == ("sent", 1, "fake")
        assert message.external_id == "FAKETEXT1"
        assert message.sent_at == h.clock.now()

    async def test_a_rolled_back_text_never_leaves(
        self, h: Harness, container: Container, sender: ScriptedSender
    ) -> None:
        # A web report: no receipt is queued at intake, so the outbox starts empty. (An SOS-line
        # report's receipt is committed with the report itself.)
        report = await submit(container, channel="web")
        anna = await staff_named(container, await h.staff("Anna"))

        async def acceptance_that_fails() -> None:
            async with container.db.begin() as session:
                queued = await notify.queue_accepted(
                    session, report=report, staff=anna, now=h.clock.now()
                )
                assert queued is not None
                raise RuntimeError("the acceptance failed after queueing")

        with pytest.raises(RuntimeError):
            await acceptance_that_fails()

        await h.advance(60)
        assert sender.text_attempts == []
        assert await messages(container) == []

    async def test_texts_are_not_pages(self, h: Harness, container: Container) -> None:
        report = await submit(container)
        await queue_receipt(container, report)
        await h.tick()

        h.expect()  # no page went out: the receipt is a text
        h.expect_texts((CUSTOMER, SMS))


class TestFailures:
    async def test_a_temporary_error_is_retried_with_backoff(
        self, h: Harness, container: Container, sender: ScriptedSender
    ) -> None:
        sender.script_texts(FAILS_TEMPORARILY, FAILS_TEMPORARILY)
        await queue_receipt(container, await submit(container))

        await h.tick()
        message = await only_message(container)
        assert (message.state, message.due_at) == ("pending", h.clock.now() + timedelta(seconds=2))
        await h.advance(1.9)
        assert len(sender.text_attempts) == 1
        await h.advance(0.1)  # second try, fails again: 4 s this time
        assert len(sender.text_attempts) == 2
        await h.advance(3.9)
        assert len(sender.text_attempts) == 2
        await h.advance(0.1)

        h.expect_texts((CUSTOMER, SMS))
        assert (await only_message(container)).state == "sent"
        assert len(sender.text_attempts) == 3

    async def test_four_temporary_errors_fail_it_on_the_reports_timeline(
        self, h: Harness, container: Container, sender: ScriptedSender
    ) -> None:
        sender.script_texts(*[FAILS_TEMPORARILY] * 5)
        report = await submit(container)
        await queue_receipt(container, report)

        await h.tick()
        await h.advance(600)

        assert len(sender.text_attempts) == 4  # MAX_TRIES, then no more
        message = await only_message(container)
        assert (message.state, message.error) == ("failed", "rate limited")
        assert "message_failed" in types(await h.get(report.id))
        sender.script_texts()  # the fifth scripted outcome was never needed

    async def test_a_permanent_error_is_final(
        self, h: Harness, container: Container, sender: ScriptedSender
    ) -> None:
        sender.script_texts(FAILS_PERMANENTLY)
        report = await submit(container)
        await queue_receipt(container, report)

        await h.tick()
        await h.advance(600)

        assert len(sender.text_attempts) == 1
        assert (await only_message(container)).state == "failed"
        timeline = (await h.get(report.id))["timeline"]
        failed = [e for e in timeline if e["type"] == "message_failed"]
        assert len(failed) == 1
        assert failed[0]["detail"] == "receipt SMS to the customer failed: invalid number"

    async def test_an_unknown_outcome_is_never_sent_again(
        self, h: Harness, container: Container, sender: ScriptedSender
    ) -> None:
        sender.script_texts(OUTCOME_UNKNOWN)
        report = await submit(container)
        await queue_receipt(container, report)

        await h.tick()
        await h.advance(3600)

        assert len(sender.text_attempts) == 1  # a second receipt is worse than none
        assert (await only_message(container)).state == "unknown"
        assert "message_unknown" in types(await h.get(report.id))


class HangingSender:
    """A provider that takes the request and never answers."""

    name = "hanging"
    channels = frozenset({Channel.SMS})

    def __init__(self) -> None:
        self.attempts = 0

    async def send(self, page: object) -> SendResult:
        raise AssertionError(f"no pages here: {page!r}")

    async def send_text(self, text: OutboundText) -> SendResult:
        del text
        self.attempts += 1
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


class TestLostAnswers:
    async def test_a_send_past_its_deadline_is_unknown_and_not_retried(
        self, h: Harness, container: Container
    ) -> None:
        hanging = HangingSender()
        messenger = Messenger(
            ProviderRegistry([hanging]), h.clock, lease_seconds=1, send_timeout=0.05
        )
        await queue_receipt(container, await submit(container))

        await messenger.run_once(container.db, h.clock.now())
        h.clock.advance(600)
        await messenger.run_once(container.db, h.clock.now())

        assert hanging.attempts == 1
        message = await only_message(container)
        assert message.state == "unknown"
        assert message.error == "no answer within 0.05 s"

    async def test_a_lease_that_ran_out_while_sending_is_unknown(
        self, h: Harness, container: Container, sender: ScriptedSender
    ) -> None:
        await queue_receipt(container, await submit(container))
        async with container.db.begin() as session:  # a worker claimed it, then died
            await session.execute(
                update(OutboundMessage).values(
                    state="sending", fence=1, tries=1, lease_until=h.clock.now()
                )
            )

        await h.advance(60)

        assert sender.text_attempts == []
        message = await only_message(container)
        assert (message.state, message.error) == ("unknown", "worker lost during send")


# --- through Twilio ----------------------------------------------------------------------------


async def twilio_receipt(t: Twilio) -> tuple[Report, int]:
    report = await submit(t.h.container, channel="sms")
    message_id = await queue_receipt(t.h.container, report)
    await t.h.tick()
    return report, message_id


class TestThroughTwilio:
    async def test_messages_json_carries_the_body_and_our_status_callback(self, tw: Twilio) -> None:
        report, message_id = await twilio_receipt(tw)

        sms = await tw.fake.expect_sms(to=CUSTOMER)

        assert sms.from_ == SOS_NUMBER
        assert sms.body.startswith(f"SOS-melding {report.reference} ontvangen.")
        assert sms.param("ValidityPeriod") == "300"
        assert sms.param("StatusCallback") == (
            f"{PUBLIC}/webhooks/twilio/message-status?message={message_id}"
        )
        message = await only_message(tw.h.container)
        assert (message.state, message.external_id, message.provider) == (
            "sent",
            sms.sid,
            "twilio",
        )

    async def test_delivered_twice_and_out_of_order_is_delivered_once(self, tw: Twilio) -> None:
        await twilio_receipt(tw)
        sms = await tw.fake.expect_sms(to=CUSTOMER, duplicate=True)

        await sms.deliver(out_of_order=True)  # delivered, delivered, sent, sent

        assert (await only_message(tw.h.container)).state == "delivered"

    async def test_undelivered_fails_it_on_the_timeline(self, tw: Twilio) -> None:
        report, _ = await twilio_receipt(tw)
        sms = await tw.fake.expect_sms(to=CUSTOMER)

        await sms.undeliver(error_code=30003)

        message = await only_message(tw.h.container)
        assert (message.state, message.error) == ("failed", "SMS undelivered (error 30003)")
        assert "message_failed" in types(await tw.h.get(report.id))

    async def test_rate_limited_is_retried_and_sent_once(self, tw: Twilio) -> None:
        tw.fake.fail_next("Messages", status=429, code=20429, retry_after=3)
        await twilio_receipt(tw)
        assert (await only_message(tw.h.container)).state == "pending"

        await tw.h.advance(3)

        await tw.fake.expect_sms(to=CUSTOMER)  # exactly one SMS (the fake fails on a second)
        assert (await only_message(tw.h.container)).state == "sent"

    async def test_a_rejected_number_fails_without_a_retry(self, tw: Twilio) -> None:
        tw.fake.fail_next("Messages", status=400, code=21610)
        await twilio_receipt(tw)
        await tw.h.advance(600)

        assert (await only_message(tw.h.container)).state == "failed"

    async def test_a_timed_out_create_is_not_repeated_and_its_callback_settles_it(
        self, tw: Twilio
    ) -> None:
        tw.fake.hang_next("Messages")  # Twilio took it; our request timed out
        await twilio_receipt(tw)
        await tw.h.advance(600)
        assert (await only_message(tw.h.container)).state == "unknown"

        sms = await tw.fake.expect_sms(to=CUSTOMER)  # one SMS: no blind second create
        await sms.deliver()

        message = await only_message(tw.h.container)
        assert (message.state, message.external_id) == ("delivered", sms.sid)

    async def test_a_forged_status_callback_changes_nothing(self, tw: Twilio) -> None:
        _, message_id = await twilio_receipt(tw)
        sms = await tw.fake.expect_sms(to=CUSTOMER)

        forged = await tw.h.client.post(
            f"/webhooks/twilio/message-status?message={message_id}",
            data={"MessageSid": sms.sid, "MessageStatus": "failed"},
            headers={"X-Twilio-Signature": "forged="},
        )

        assert forged.status_code == 403
        assert (await only_message(tw.h.container)).state == "sent"

    async def test_a_callback_for_another_sid_or_message_is_ignored(self, tw: Twilio) -> None:
        _, message_id = await twilio_receipt(tw)
        await tw.fake.expect_sms(to=CUSTOMER)

        other_sid = await tw.signed_post(
            f"/webhooks/twilio/message-status?message={message_id}",
            {"MessageSid": "SM" + "9" * 32, "MessageStatus": "failed"},
        )
        no_such_message = await tw.signed_post(
            "/webhooks/twilio/message-status?message=999999",
            {"MessageSid": "SM" + "9" * 32, "MessageStatus": "delivered"},
        )

        assert (other_sid.status_code, no_such_message.status_code) == (204, 204)
        assert (await only_message(tw.h.container)).state == "sent"
