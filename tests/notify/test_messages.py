"""Customer texts: the templates in both languages, and what the notify service queues from them.
A text carries the reference, the promise, a time and a first name; never the customer's data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.container import Container
from routing.errors import ValidationFailed
from routing.notify import service as notify
from routing.notify import texts
from routing.notify.models import OutboundMessage
from routing.report.models import Report
from tests.harness import Harness
from tests.notify.support import CUSTOMER, DESCRIPTION, in_tx, messages, staff_named, submit


class TestReceiptText:
    def test_dutch(self) -> None:
        text = texts.receipt(language="nl", reference="K7Q4M2", minutes_promised=10)

        assert text.startswith(
            "SOS-melding K7Q4M2 ontvangen. Binnen 10 minuten belt een medewerker"
        )

    def test_english(self) -> None:
        text = texts.receipt(language="en", reference="K7Q4M2", minutes_promised=10)

        assert text.startswith("SOS report K7Q4M2 received.")
        assert "within 10 minutes" in text

    def test_one_minute_is_singular(self) -> None:
        assert "Binnen 1 minuut " in texts.receipt(language="nl", reference="R", minutes_promised=1)
        assert "within 1 minute." in texts.receipt(language="en", reference="R", minutes_promised=1)

    def test_another_language_falls_back_to_dutch(self) -> None:
        assert texts.receipt(language="de", reference="R", minutes_promised=10).startswith(
            "SOS-melding R ontvangen."
        )


class TestPromiseMinutes:
    @pytest.mark.parametrize(("seconds", "minutes"), [(600, 10), (300, 5), (90, 2), (1, 1)])
    def test_from_deadline_minus_received_rounded_up(self, seconds: int, minutes: int) -> None:
        received = datetime(2026, 1, 5, 9, tzinfo=UTC)

        assert texts.promise_minutes(received, received + timedelta(seconds=seconds)) == minutes


class TestAcceptedText:
    def test_dutch_names_the_first_name_and_the_fraud_team(self) -> None:
        text = texts.accepted(
            language="nl", reference="K7Q4M2", staff_name="Anna de Vries", category="fraud"
        )

        assert text.endswith("Anna van het fraudeteam belt u nu op dit nummer.")
        assert "Vries" not in text  # the first name only
        assert "K7Q4M2" in text

    def test_english(self) -> None:
        text = texts.accepted(
            language="en", reference="K7Q4M2", staff_name="Bram Jansen", category="lost_card"
        )

        assert text.endswith("Bram from the card team is calling you now on this number.")
        assert "Jansen" not in text

    @pytest.mark.parametrize(
        ("category", "nl", "en"),
        [
            ("fraud", "fraudeteam", "fraud team"),
            ("account_takeover", "fraudeteam", "fraud team"),
            ("lost_card", "passenteam", "card team"),
            ("other", "SOS-team", "SOS team"),
            ("something_new", "SOS-team", "SOS team"),
        ],
    )
    def test_team_by_category(self, category: str, nl: str, en: str) -> None:
        assert texts.team(language="nl", category=category) == nl
        assert texts.team(language="en", category=category) == en


class TestCallbackText:
    def test_the_time_is_on_the_amsterdam_clock_in_winter(self) -> None:
        at = datetime(2026, 1, 5, 13, 30, tzinfo=UTC)

        text = texts.callback_scheduled(language="nl", reference="K7Q4M2", at=at)

        assert text == "SOS-melding K7Q4M2: we bellen u op maandag 5 januari om 14:30."

    def test_and_in_summer(self) -> None:
        at = datetime(2026, 7, 6, 12, 0, tzinfo=UTC)

        text = texts.callback_scheduled(language="en", reference="K7Q4M2", at=at)

        assert text == "SOS report K7Q4M2: we will call you on Monday 6 July at 14:00."

    def test_another_zone_when_given(self) -> None:
        at = datetime(2026, 1, 5, 13, 30, tzinfo=UTC)

        text = texts.callback_scheduled(
            language="en", reference="R", at=at, time_zone="Europe/London"
        )

        assert "Monday 5 January at 13:30" in text


class TestVerificationText:
    def test_sms_carries_the_code_and_its_lifetime(self) -> None:
        nl = texts.verification_sms(language="nl", code="048213", valid_minutes=10)
        en = texts.verification_sms(language="en", code="048213", valid_minutes=10)

        assert "048213" in nl
        assert "10 minuten" in nl
        assert "048213" in en
        assert "10 minutes" in en

    def test_spoken_spells_every_digit_twice(self) -> None:
        nl = texts.verification_spoken(language="nl", code="048213")
        en = texts.verification_spoken(language="en", code="048213")

        assert nl.count("nul, vier, acht, twee, één, drie") == 2
        assert en.count("zero, four, eight, two, one, three") == 2
        assert not any(ch.isdigit() for ch in nl + en)  # words, not digits, for the voice


# --- the service -------------------------------------------------------------------------------


async def _queued(container: Container, report: Report) -> OutboundMessage | None:
    async def use_case(session: AsyncSession) -> OutboundMessage | None:
        return await notify.queue_receipt(session, report=report, now=container.clock.now())

    return await in_tx(container, use_case)


class TestQueueReceipt:
    @pytest.mark.parametrize("channel", ["sos_line", "sms"])
    async def test_phone_and_sms_reports_get_an_sms(
        self, container: Container, channel: str
    ) -> None:
        report = await submit(container, channel=channel, sla_seconds=300)

        message = await _queued(container, report)

        assert message is not None
        assert (message.kind, message.channel, message.to) == ("receipt", "sms", CUSTOMER)
        assert message.state == "pending"
        assert report.reference in message.body
        assert "Binnen 5 minuten" in message.body  # the report's own promise, not a constant

    @pytest.mark.parametrize("channel", ["web", "app"])
    async def test_web_and_app_reports_have_the_status_page(
        self, container: Container, channel: str
    ) -> None:
        report = await submit(container, channel=channel)

        assert await _queued(container, report) is None
        assert await messages(container) == []

    async def test_in_the_reports_language(self, container: Container) -> None:
        report = await submit(container, language="en")

        message = await _queued(container, report)

        assert message is not None
        assert message.body.startswith(f"SOS report {report.reference} received.")
        assert message.language == "en"

    async def test_once_per_report(self, container: Container) -> None:
        report = await submit(container)

        first = await _queued(container, report)
        second = await _queued(container, report)

        assert first is not None
        assert second is not None
        assert second.id == first.id
        assert len(await messages(container)) == 1

    @pytest.mark.parametrize("phone", ["anonymous", "+31201234567"])
    async def test_no_sms_to_a_withheld_number_or_a_landline(
        self, container: Container, phone: str
    ) -> None:
        report = await submit(container, phone=phone)

        assert await _queued(container, report) is None

    async def test_never_the_customers_data(self, container: Container) -> None:
        report = await submit(container)

        message = await _queued(container, report)

        assert message is not None
        for secret in (CUSTOMER, "12345678", "NL91", "1.234,56", "4111", DESCRIPTION[:20]):
            assert secret not in message.body


class TestQueueAccepted:
    async def test_names_the_first_name_and_the_team_for_every_channel(
        self, h: Harness, container: Container
    ) -> None:
        anna = await staff_named(container, await h.staff("Anna de Vries"))
        for channel, category, team, phone in [
            ("app", "fraud", "fraudeteam", CUSTOMER),
            ("web", "lost_card", "passenteam", "+31611112222"),  # another customer: another case
        ]:
            report = await submit(container, channel=channel, category=category, phone=phone)

            async def use_case(session: AsyncSession, report: Report = report) -> object:
                return await notify.queue_accepted(
                    session, report=report, staff=anna, now=container.clock.now()
                )

            message = await in_tx(container, use_case)

            assert isinstance(message, OutboundMessage)
            assert message.to == phone
            assert message.body.endswith(f"Anna van het {team} belt u nu op dit nummer.")
            assert "Vries" not in message.body

    async def test_once_per_report(self, h: Harness, container: Container) -> None:
        anna = await staff_named(container, await h.staff("Anna"))
        report = await submit(container)

        async def use_case(session: AsyncSession) -> object:
            return await notify.queue_accepted(
                session, report=report, staff=anna, now=container.clock.now()
            )

        await in_tx(container, use_case)
        await in_tx(container, use_case)

        # The receipt was queued at intake (an SOS-line report); one "belt u nu", not two.
        assert [m.kind for m in await messages(container)] == ["receipt", "accepted"]


class TestCallbackConfirmation:
    async def test_a_new_appointment_replaces_an_unsent_confirmation(
        self, container: Container
    ) -> None:
        report = await submit(container, channel="web")
        first_at = datetime(2026, 1, 5, 13, 30, tzinfo=UTC)

        for at in (first_at, first_at + timedelta(hours=1)):

            async def use_case(session: AsyncSession, at: datetime = at) -> object:
                return await notify.queue_callback_confirmation(
                    session, report=report, at=at, now=container.clock.now()
                )

            await in_tx(container, use_case)

        queued = await messages(container)
        assert [(m.kind, m.state) for m in queued] == [
            ("callback", "canceled"),
            ("callback", "pending"),
        ]
        assert "om 15:30" in queued[1].body

    async def test_an_unknown_time_zone_names_the_field(self, container: Container) -> None:
        report = await submit(container)

        async def use_case(session: AsyncSession) -> object:
            return await notify.queue_callback_confirmation(
                session,
                report=report,
                at=container.clock.now(),
                now=container.clock.now(),
                time_zone="Mars/Olympus",
            )

        with pytest.raises(ValidationFailed) as raised:
            await in_tx(container, use_case)
        assert raised.value.field == "time_zone"


class TestCancelForReport:
    async def test_cancels_unsent_texts_but_keeps_the_receipt(
        self, h: Harness, container: Container
    ) -> None:
        anna = await staff_named(container, await h.staff("Anna"))
        report = await submit(container)
        now = container.clock.now()

        async def queue_all(session: AsyncSession) -> int:
            await notify.queue_receipt(session, report=report, now=now)
            await notify.queue_accepted(session, report=report, staff=anna, now=now)
            await notify.queue_callback_confirmation(session, report=report, at=now, now=now)
            return await notify.cancel_for_report(session, report_id=report.id, now=now)

        assert await in_tx(container, queue_all) == 2
        states = {m.kind: m.state for m in await messages(container)}
        assert states == {"receipt": "pending", "accepted": "canceled", "callback": "canceled"}
