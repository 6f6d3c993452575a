"""The adapters' last line of defence: with the guard `app/` hands in, no IBAN, card number or
amount leaves through Slack or Twilio even if the domain missed it, and the log says so (without
the content). The container always wires the guard."""

from __future__ import annotations

import json
import logging
from urllib.parse import parse_qs

import httpx
import pytest

from app.container import default_senders
from app.settings import Settings, SlackSettings, TwilioSettings
from providers.base import Channel, OutboundPage, OutboundText
from providers.slack.client import SlackClient, SlackConfig
from providers.slack.sender import SlackChat
from providers.twilio.client import TwilioClient
from providers.twilio.config import TwilioConfig
from providers.twilio.senders import TwilioSms, TwilioVoice
from routing.guard import scrub

IBAN = "NL91ABNA0417164300"
CARD = "4111 1111 1111 1111"
TWILIO = TwilioConfig(
    account_sid="AC" + "0" * 32,
    auth_token="token",
    from_number="+31201234567",
    public_base_url="https://sos.example.test",
    api_base="https://api.twilio.test",
)


def recording(seen: list[httpx.Request], answer: dict[str, object]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201 if "twilio" in str(request.url) else 200, json=answer)

    return httpx.MockTransport(handler)


def twilio_client(seen: list[httpx.Request]) -> TwilioClient:
    transport = recording(seen, {"sid": "SM" + "1" * 32, "ok": True})
    return TwilioClient(TWILIO, httpx.AsyncClient(transport=transport, base_url=TWILIO.api_base))


def form(request: httpx.Request) -> dict[str, list[str]]:
    return parse_qs(request.content.decode())


class TestTwilio:
    async def test_an_sms_text_is_screened_and_logged(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        seen: list[httpx.Request] = []
        sms = TwilioSms(twilio_client(seen), guard=scrub)
        text = OutboundText(1, Channel.SMS, "+31612345678", f"Anna {IBAN} belt u", "nl")

        with caplog.at_level(logging.WARNING):
            await sms.send_text(text)

        assert form(seen[0])["Body"] == ["Anna [IBAN] belt u"]
        assert "removed iban from SMS text 1" in caplog.text
        assert IBAN not in caplog.text

    async def test_a_spoken_text_is_screened_inside_the_twiml(self) -> None:
        seen: list[httpx.Request] = []
        voice = TwilioVoice(twilio_client(seen), guard=scrub)
        text = OutboundText(2, Channel.VOICE, "+31612345678", f"Pas {CARD} is dicht", "nl")

        await voice.send_text(text)

        [twiml] = form(seen[0])["Twiml"]
        assert "Pas [card] is dicht" in twiml
        assert "4111" not in twiml

    async def test_an_sms_page_is_screened_too(self) -> None:
        seen: list[httpx.Request] = []
        sms = TwilioSms(twilio_client(seen), guard=scrub)
        page = OutboundPage(3, Channel.SMS, "+31611111111", "Anna", "nl", "K7Q4M2", "fraud", "€ 50")

        await sms.send(page)

        assert form(seen[0])["Body"] == ["[amount]"]


class TestSlack:
    async def test_pages_updates_and_replies_are_screened(self) -> None:
        seen: list[httpx.Request] = []
        transport = recording(seen, {"ok": True, "channel": "D0ANNA", "ts": "1.0"})
        http = httpx.AsyncClient(transport=transport, base_url="https://slack.test/api")
        chat = SlackChat(
            SlackClient(SlackConfig("xoxb", "https://slack.test/api"), http), guard=scrub
        )
        page = OutboundPage(
            4, Channel.CHAT, "U0ANNA", "Anna", "en", "K7Q4M2", "fraud", f"€ 5 {IBAN}"
        )

        await chat.send(page)
        await chat.show_accepted(
            channel="D0ANNA", ts="1.0", holder_name=f"Anna {IBAN}", category="fraud", reference="R"
        )
        await chat.tell(channel="D0ANNA", user="U0BRAM", text=f"saldo 12,50 {IBAN}")

        bodies = [request.content.decode() for request in seen]
        assert len(bodies) == 3
        for body in bodies:
            assert IBAN not in body
            assert "12,50" not in body
        assert json.loads(bodies[0])["text"] == "[amount] [IBAN]"


def test_the_container_hands_every_adapter_the_guard(settings: Settings) -> None:
    configured = settings.model_copy(
        update={
            "public_base_url": "https://sos.example.test",
            "twilio": TwilioSettings.model_validate(
                {"account_sid": "AC" + "0" * 32, "auth_token": "t", "from_number": "+31201234567"}
            ),
            "slack": SlackSettings.model_validate({"bot_token": "xoxb", "signing_secret": "s"}),
        }
    )

    senders = default_senders(configured)

    guarded = [s for s in senders if isinstance(s, TwilioSms | TwilioVoice | SlackChat)]
    assert len(guarded) == 3
    assert all(s.guard is scrub for s in guarded)
