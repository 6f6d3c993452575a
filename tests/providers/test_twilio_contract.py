"""Every kind of request sos-router sends to Twilio, checked against Twilio's official OpenAPI
description (../shared/contracts/twilio_api_v2010.json) by the fake Twilio."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from providers.base import (
    OutcomeUnknownError,
    PermanentProviderError,
    SentQuery,
    TemporaryProviderError,
)
from providers.twilio.client import TwilioClient
from providers.twilio.config import TwilioConfig
from providers.twilio.senders import TwilioSms, TwilioVoice
from routing.clock import FakeClock
from tests.fakes.twilio import FakeTwilio

SID = "AC" + "b2" * 16
TOKEN = "contract-token"
CONFIG = TwilioConfig(
    account_sid=SID,
    auth_token=TOKEN,
    from_number="+31201234567",
    public_base_url="https://sos.example.test",
    api_base="https://api.twilio.test",
)


@pytest.fixture
async def fake_client() -> AsyncIterator[tuple[FakeTwilio, TwilioClient]]:
    fake = FakeTwilio(SID, TOKEN, public_base_url=CONFIG.public_base_url)
    async with httpx.AsyncClient(
        transport=fake.transport, base_url=CONFIG.api_base, auth=(SID, TOKEN)
    ) as http:
        yield fake, TwilioClient(CONFIG, http)


async def test_every_request_kind_matches_the_contract(
    fake_client: tuple[FakeTwilio, TwilioClient],
) -> None:
    fake, client = fake_client
    call_sid = await client.create_call(
        to="+31611111111",
        url=CONFIG.url("/webhooks/twilio/pages/1/voice"),
        status_callback=CONFIG.url("/webhooks/twilio/pages/1/call-status"),
        amd_callback=CONFIG.url("/webhooks/twilio/pages/1/amd"),
        ring_seconds=25,
    )
    assert call_sid.startswith("CA")
    fetched = await client.fetch_call(call_sid)
    assert fetched is not None
    await client.end_call(call_sid)
    message_sid = await client.create_message(
        to="+31611111111",
        body="SOS fraude, melding K7Q4M2. Antwoord 1.",
        status_callback=CONFIG.url("/webhooks/twilio/pages/2/sms-status"),
        validity_seconds=300,
    )
    assert message_sid.startswith("SM")
    assert await client.fetch_message(message_sid) is not None
    leg = await client.add_participant(
        conference="sos-report-1",
        to="+31612345678",
        status_callback=CONFIG.url("/webhooks/twilio/bridge/1/status"),
        ring_seconds=50,
        starts_room=False,
    )
    assert leg.startswith("CA")
    assert await client.fetch_call("CA" + "0" * 32) is None  # unknown: confirmed absent

    call = await fake.expect_call(to="+31611111111")
    assert call.param("MachineDetection") == "Enable"
    assert call.param("From") == "+31201234567"
    sms = await fake.expect_sms(to="+31611111111")
    assert sms.form["ValidityPeriod"] == ["300"]
    await fake.expect_participant(to="+31612345678")
    fake.assert_clean()


async def test_rejections_and_timeouts_are_classified(
    fake_client: tuple[FakeTwilio, TwilioClient],
) -> None:
    fake, client = fake_client
    fake.fail_next("Messages", 400, 21610)
    with pytest.raises(PermanentProviderError) as rejected:
        await client.create_message(
            to="+31611111111", body="x", status_callback=CONFIG.url("/s"), validity_seconds=60
        )
    assert rejected.value.code == "21610"
    fake.hang_next("Calls")
    with pytest.raises(OutcomeUnknownError):
        await client.create_call(
            to="+31611111111",
            url=CONFIG.url("/v"),
            status_callback=CONFIG.url("/s"),
            amd_callback=CONFIG.url("/a"),
            ring_seconds=25,
        )
    await fake.expect_call(to="+31611111111")  # it exists: never blindly create it again
    fake.assert_clean()


async def test_looking_sends_up_by_number_and_time_matches_the_contract() -> None:
    """The lists the reconciler looks a page up in: `To`, `From`, `DateSent>` / `StartTime>` (a
    date-time), `Status`, `PageSize`; all of them names the contract knows."""
    clock = FakeClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    fake = FakeTwilio(SID, TOKEN, public_base_url=CONFIG.public_base_url, clock=clock)
    async with httpx.AsyncClient(
        transport=fake.transport, base_url=CONFIG.api_base, auth=(SID, TOKEN)
    ) as http:
        client = TwilioClient(CONFIG, http)
        voice, sms = TwilioVoice(client), TwilioSms(client)
        since = clock.now() - timedelta(seconds=60)
        anna = SentQuery(page_id=1, to="+31611111111", since=since)
        clock.advance(1)
        call = await client.create_call(
            to=anna.to,
            url=CONFIG.url("/webhooks/twilio/pages/1/voice"),
            status_callback=CONFIG.url("/webhooks/twilio/pages/1/call-status"),
            amd_callback=CONFIG.url("/webhooks/twilio/pages/1/amd"),
            ring_seconds=25,
        )
        message = await client.create_message(
            to=anna.to,
            body="SOS fraude K7Q4M2 https://sos.example.test/ack/" + "t" * 43,
            status_callback=CONFIG.url("/webhooks/twilio/pages/2/sms-status"),
            validity_seconds=300,
        )
        await client.create_message(
            to="+31622222222",
            body="someone else",
            status_callback=CONFIG.url("/webhooks/twilio/pages/3/sms-status"),
            validity_seconds=300,
        )

        calls = await voice.sent_to(anna)  # queued: found by its status
        not_yet = await sms.sent_to(anna)  # still in Twilio's queue: no sent date yet
        for taken in [await fake.expect_sms(to=anna.to), await fake.expect_sms(to="+31622222222")]:
            taken.callbacks_lost = True
            await taken.mark_sent()
        texts = await sms.sent_to(anna)
        later = await sms.sent_to(SentQuery(1, anna.to, clock.now() + timedelta(seconds=1)))

    assert calls.complete
    assert [r.external_id for r in calls.records] == [call]
    assert calls.records[0].created_at == clock.now()
    assert calls.records[0].body is None
    assert not_yet.records == ()
    assert [(r.external_id, r.body) for r in texts.records] == [
        (message, "SOS fraude K7Q4M2 https://sos.example.test/ack/" + "t" * 43)
    ]
    assert texts.complete
    assert later.records == ()
    assert sms.listed_within == 300
    assert voice.listed_within == 0
    await fake.expect_call(to=anna.to)
    fake.assert_clean()


async def test_a_list_with_more_than_a_page_is_not_complete(
    fake_client: tuple[FakeTwilio, TwilioClient],
) -> None:
    fake, client = fake_client
    for n in range(101):
        await client.create_call(
            to="+31611111111",
            url=CONFIG.url(f"/webhooks/twilio/pages/{n}/voice"),
            status_callback=CONFIG.url(f"/webhooks/twilio/pages/{n}/call-status"),
            amd_callback=CONFIG.url(f"/webhooks/twilio/pages/{n}/amd"),
            ring_seconds=25,
        )
        await fake.expect_call(to="+31611111111")

    calls, complete = await client.list_calls(to="+31611111111", status="queued")

    assert (len(calls), complete) == (100, False)
    fake.assert_clean()


async def test_a_query_parameter_the_contract_does_not_name_is_a_violation(
    fake_client: tuple[FakeTwilio, TwilioClient],
) -> None:
    fake, client = fake_client
    base = f"/2010-04-01/Accounts/{SID}/Messages.json"
    # `DateSent>=…` in a URL is the parameter `DateSent>`; a client that encodes the whole
    # `DateSent>=` as a name sends one Twilio does not know (and silently ignores).
    r = await client.http.get(base, params={"DateSent>=": "2026-01-05T00:00:00Z"})
    assert r.status_code == 400
    with pytest.raises(AssertionError, match="unknown query parameter DateSent>="):
        fake.assert_clean()


async def test_a_failing_list_is_an_error_not_an_empty_answer(
    fake_client: tuple[FakeTwilio, TwilioClient],
) -> None:
    fake, client = fake_client
    fake.fail_next_list("Messages", 500, 20500)
    query = SentQuery(1, "+31611111111", datetime(2026, 1, 5, tzinfo=UTC))
    with pytest.raises(OutcomeUnknownError):
        await TwilioSms(client).sent_to(query)
    fake.fail_next_list("Calls", 429, 20429)
    with pytest.raises(TemporaryProviderError):
        await TwilioVoice(client).sent_to(query)
    assert (await TwilioSms(client).sent_to(query)).records == ()
    fake.assert_clean()
