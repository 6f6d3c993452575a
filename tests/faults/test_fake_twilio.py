"""The fault suite's fake Twilio, driven by the real Twilio adapter (no processes, no database):
it must take what the adapter sends, record it under our page id, and fail the way Twilio does,
or the crash scenarios would prove nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from providers.base import (
    Channel,
    DeliveryState,
    OutboundPage,
    OutcomeUnknownError,
    PermanentProviderError,
    SentQuery,
    TemporaryProviderError,
)
from providers.twilio.client import TwilioClient, new_http_client
from providers.twilio.config import TwilioConfig
from providers.twilio.senders import TwilioSms, TwilioVoice
from tests.faults.fake_twilio import FakeTwilio
from tests.faults.procs import account_sid

TOKEN = "fake-twilio-token"


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio(TOKEN) as twilio:
        yield twilio


@pytest.fixture
async def client(fake: FakeTwilio) -> AsyncIterator[TwilioClient]:
    config = TwilioConfig(
        account_sid=account_sid("worker-1"),
        auth_token=TOKEN,
        from_number="+3197010000000",
        public_base_url="http://sos.test",
        api_base=fake.url,
    )
    http = new_http_client(config, timeout=httpx.Timeout(1.0))
    yield TwilioClient(config, http)
    await http.aclose()


def page(page_id: int, channel: Channel = Channel.SMS) -> OutboundPage:
    return OutboundPage(
        page_id=page_id,
        channel=channel,
        to="+31611111111",
        staff_name="Anna",
        language="nl",
        reference="SOS-1",
        category="fraud",
        text="Fraude SOS-1",
    )


async def test_sends_are_recorded_under_their_page_and_process_and_can_be_looked_up(
    fake: FakeTwilio, client: TwilioClient
) -> None:
    sms = await TwilioSms(client).send(page(7))
    call = await TwilioVoice(client).send(page(8, Channel.VOICE))
    assert [(s.page_id, s.kind, s.account) for s in fake.pages()] == [
        (7, "sms", account_sid("worker-1")),
        (8, "call", account_sid("worker-1")),
    ]
    assert fake.by_page()[7][0].sid == sms.external_id
    found = await TwilioSms(client).status(7, sms.external_id)
    assert found is not None
    assert found.state == DeliveryState.SENT
    assert await TwilioVoice(client).status(8, call.external_id) is not None
    assert await TwilioSms(client).status(7, "SM" + "0" * 32) is None


async def test_sends_without_their_sid_are_found_by_number_and_time(
    fake: FakeTwilio, client: TwilioClient
) -> None:
    """What the reconciler asks when a process died before recording a sid: another process
    (each has its own account here, standing for one real account) finds what went to a number
    since a moment."""
    before = datetime.now(UTC) - timedelta(seconds=60)
    config = TwilioConfig(
        account_sid=account_sid("serve-1"),
        auth_token=TOKEN,
        from_number=client.config.from_number,
        public_base_url="http://sos.test",
        api_base=fake.url,
    )
    async with new_http_client(config, timeout=httpx.Timeout(1.0)) as http:
        victim = TwilioClient(config, http)
        sms = await TwilioSms(victim).send(page(7))
        call = await TwilioVoice(victim).send(page(8, Channel.VOICE))
    anna = SentQuery(page_id=7, to="+31611111111", since=before)

    texts = await TwilioSms(client).sent_to(anna)
    calls = await TwilioVoice(client).sent_to(anna)
    later = SentQuery(page_id=7, to="+31611111111", since=datetime.now(UTC) + timedelta(hours=1))
    other = SentQuery(page_id=7, to="+31622222222", since=before)

    assert [(r.external_id, r.body) for r in texts.records] == [(sms.external_id, "Fraude SOS-1")]
    assert texts.complete
    assert [r.external_id for r in calls.records] == [call.external_id]
    [record] = calls.records
    assert record.created_at is not None
    assert before <= record.created_at <= datetime.now(UTC)
    assert (await TwilioSms(client).sent_to(later)).records == ()
    assert (await TwilioVoice(client).sent_to(other)).records == ()


async def test_scripted_failures_are_what_twilio_answers(
    fake: FakeTwilio, client: TwilioClient
) -> None:
    fake.fail(429)
    with pytest.raises(TemporaryProviderError):
        await TwilioSms(client).send(page(1))
    fake.fail(500)
    with pytest.raises(OutcomeUnknownError):
        await TwilioSms(client).send(page(1))
    fake.fail(400)
    with pytest.raises(PermanentProviderError):
        await TwilioSms(client).send(page(1))
    assert fake.pages() == []  # a failed create stores nothing
    await TwilioSms(client).send(page(1))
    assert len(fake.pages()) == 1


async def test_a_hung_provider_took_the_page_but_never_answers(
    fake: FakeTwilio, client: TwilioClient
) -> None:
    fake.hang()
    try:
        with pytest.raises(OutcomeUnknownError):
            await TwilioSms(client).send(page(3))
    finally:
        fake.release()
    assert [s.page_id for s in fake.pages()] == [3]


async def test_wrong_credentials_are_refused(fake: FakeTwilio, client: TwilioClient) -> None:
    fake.auth_token = "another-token"
    with pytest.raises(PermanentProviderError, match="401"):
        await TwilioSms(client).send(page(1))
    assert fake.pages() == []
