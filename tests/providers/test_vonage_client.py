"""The Vonage adapter against the fake Vonage: what each page and text asks Vonage to do, how its
answers and failures reach the engine, and that every request carries a valid application JWT."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from providers.base import (
    Channel,
    DeliveryState,
    OutboundPage,
    OutboundText,
    OutcomeUnknownError,
    PermanentProviderError,
    ProviderError,
    RoomCall,
    StatusChecker,
    TemporaryProviderError,
)
from providers.vonage.auth import ApplicationJwt
from providers.vonage.client import VonageClient
from providers.vonage.config import VonageConfig
from providers.vonage.senders import VonageSms, VonageVoice
from routing.guard import scrub
from tests.fakes.vonage import (
    API_BASE,
    APPLICATION_ID,
    SIGNATURE_SECRET,
    FakeVonage,
    key_pair,
)

PUBLIC = "https://sos.example.test"
OURS, ANNA = "+31201234567", "+31611111111"


def config() -> VonageConfig:
    private, _ = key_pair()
    return VonageConfig(
        application_id=APPLICATION_ID,
        private_key=private,
        signature_secret=SIGNATURE_SECRET,
        from_number=OURS,
        public_base_url=PUBLIC,
        api_base=API_BASE,
    )


@pytest.fixture
def fake() -> FakeVonage:
    _, public = key_pair()
    return FakeVonage(APPLICATION_ID, public, SIGNATURE_SECRET, public_base_url=PUBLIC)


@pytest.fixture
async def client(fake: FakeVonage) -> AsyncIterator[VonageClient]:
    cfg = config()
    auth = ApplicationJwt(cfg.application_id, cfg.private_key)
    async with httpx.AsyncClient(transport=fake.transport, base_url=API_BASE, auth=auth) as http:
        yield VonageClient(cfg, http)
    assert fake.errors == []


def page(channel: Channel, text: str = "Noodmelding fraude K7Q4M2") -> OutboundPage:
    return OutboundPage(
        page_id=42,
        channel=channel,
        to=ANNA,
        staff_name="Anna",
        language="nl",
        reference="K7Q4M2",
        category="fraud",
        text=text,
    )


def sent_json(fake: FakeVonage) -> Any:
    return httpx.Response(200, content=fake.requests[-1].content).json()


class TestVoicePage:
    async def test_rings_from_our_number_and_asks_us_what_to_say_when_answered(
        self, fake: FakeVonage, client: VonageClient
    ) -> None:
        result = await VonageVoice(client).send(page(Channel.VOICE))

        call = await fake.expect_call(to=ANNA)
        assert result.provider == "vonage"
        assert result.external_id == call.uuid
        assert call.from_ == OURS
        body = sent_json(fake)
        assert body["answer_url"] == [f"{PUBLIC}/webhooks/vonage/pages/42/answer"]
        assert body["event_url"] == [f"{PUBLIC}/webhooks/vonage/pages/42/event"]
        assert body["machine_detection"] == "continue"  # voicemail must be told apart
        assert body["ringing_timer"] == 25

    async def test_status_lookup_and_hangup_reach_that_call(
        self, fake: FakeVonage, client: VonageClient
    ) -> None:
        voice = VonageVoice(client)
        result = await voice.send(page(Channel.VOICE))
        call = await fake.expect_call(to=ANNA)
        assert isinstance(voice, StatusChecker)

        found = await voice.status(42, result.external_id)
        assert found is not None
        assert found.state == DeliveryState.SENT  # started: nothing to say yet
        await voice.cancel(call.uuid)
        assert call.ended_by == "api"
        assert call.status == "cancelled"
        assert await voice.status(42, "00000000-0000-4000-8000-000000000000") is None
        with pytest.raises(ProviderError, match="no call uuid"):
            await voice.status(42, None)

    async def test_a_spoken_text_carries_its_words_and_passes_the_guard(
        self, fake: FakeVonage, client: VonageClient
    ) -> None:
        text = OutboundText(
            7, Channel.VOICE, ANNA, "Uw code is 1 2 3 4. IBAN NL91ABNA0417164300", "nl"
        )
        await VonageVoice(client, guard=scrub).send_text(text)

        call = await fake.expect_call(to=ANNA)
        [talk] = call.body["ncco"]
        assert talk["text"].startswith("Uw code is 1 2 3 4.")
        assert "NL91ABNA0417164300" not in talk["text"]
        assert talk["language"] == "nl-NL"
        assert call.body["event_url"] == [f"{PUBLIC}/webhooks/vonage/texts/7/call-event"]

    async def test_a_bridge_call_joins_the_reports_room(
        self, fake: FakeVonage, client: VonageClient
    ) -> None:
        await VonageVoice(client).call_into_room(
            RoomCall(call_id=3, to=ANNA, room="sos-R1", leg="customer")
        )

        call = await fake.expect_bridge_call(to=ANNA)
        [join] = call.body["ncco"]
        assert join == {
            "action": "conversation",
            "name": "sos-R1",
            "startOnEnter": False,  # the customer waits for the colleague
            "endOnExit": False,
        }
        assert call.body["ringing_timer"] == 50  # customers get longer to pick up


class TestSmsPage:
    async def test_sends_through_the_messages_api_with_its_own_status_webhook(
        self, fake: FakeVonage, client: VonageClient
    ) -> None:
        result = await VonageSms(client, guard=scrub).send(
            page(Channel.SMS, "Noodmelding K7Q4M2, kaart 4111 1111 1111 1111")
        )

        sms = await fake.expect_sms(to=ANNA)
        assert result.external_id == sms.uuid
        assert sms.from_ == OURS
        assert "4111 1111 1111 1111" not in sms.text  # the last line of defence
        body = sent_json(fake)
        assert body["webhook_url"] == f"{PUBLIC}/webhooks/vonage/pages/42/sms-status"
        assert body["client_ref"] == "page-42"
        assert body["ttl"] == 300  # a page delivered an hour late does harm

    def test_cannot_look_a_message_up_so_it_is_no_status_checker(
        self, client: VonageClient
    ) -> None:
        assert not isinstance(VonageSms(client), StatusChecker)


class TestErrors:
    @pytest.mark.parametrize(
        ("status", "error"),
        [
            (429, TemporaryProviderError),
            (400, PermanentProviderError),
            (401, PermanentProviderError),
            (422, PermanentProviderError),
            (500, OutcomeUnknownError),
            (503, OutcomeUnknownError),
        ],
    )
    async def test_answers_become_the_ports_errors(
        self, fake: FakeVonage, client: VonageClient, status: int, error: type[Exception]
    ) -> None:
        fake.fail_next("messages", status, retry_after=3 if status == 429 else None)
        with pytest.raises(error) as caught:
            await VonageSms(client).send(page(Channel.SMS))
        assert f"vonage {status}" in str(caught.value)
        if status == 429:
            assert isinstance(caught.value, TemporaryProviderError)
            assert caught.value.retry_after == 3
        assert fake.messages == []

    async def test_a_read_timeout_after_sending_is_an_unknown_outcome(
        self, fake: FakeVonage, client: VonageClient
    ) -> None:
        fake.hang_next("calls")
        with pytest.raises(OutcomeUnknownError):
            await VonageVoice(client).send(page(Channel.VOICE))
        await fake.expect_call(to=ANNA)  # it exists: never create it blindly again

    async def test_a_connection_that_never_opened_is_temporary(
        self, fake: FakeVonage, client: VonageClient
    ) -> None:
        fake.drop_next("calls")
        with pytest.raises(TemporaryProviderError):
            await VonageVoice(client).send(page(Channel.VOICE))
        assert fake.calls == []

    async def test_a_token_signed_with_another_key_is_refused(self, fake: FakeVonage) -> None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = other.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        auth = ApplicationJwt(APPLICATION_ID, pem)
        async with httpx.AsyncClient(transport=fake.transport, base_url=API_BASE, auth=auth) as h:
            with pytest.raises(PermanentProviderError, match="vonage 401"):
                await VonageSms(VonageClient(config(), h)).send(page(Channel.SMS))
        assert fake.messages == []
        fake.errors.clear()  # the fake noted the bad token, as it should


class TestApplicationJwt:
    def test_claims_are_fresh_per_request(self) -> None:
        import jwt

        private, public = key_pair()
        auth = ApplicationJwt(APPLICATION_ID, private, now=lambda: 1_800_000_000)
        first, second = auth.token(), auth.token()
        claims = jwt.decode(
            first, public, algorithms=["RS256"], options={"verify_exp": False, "verify_iat": False}
        )
        assert claims["application_id"] == APPLICATION_ID
        assert claims["exp"] - claims["iat"] == 300
        other = jwt.decode(
            second, public, algorithms=["RS256"], options={"verify_exp": False, "verify_iat": False}
        )
        assert claims["jti"] != other["jti"]

    def test_a_key_that_is_not_a_pem_is_refused_at_once(self) -> None:
        with pytest.raises(ValueError, match="PEM"):
            ApplicationJwt(APPLICATION_ID, "not a key")
