"""Every kind of request sos-router sends to Twilio, checked against Twilio's official OpenAPI
description (../shared/contracts/twilio_api_v2010.json) by the fake Twilio."""

from collections.abc import AsyncIterator

import httpx
import pytest

from providers.base import OutcomeUnknownError, PermanentProviderError
from providers.twilio.client import TwilioClient
from providers.twilio.config import TwilioConfig
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
