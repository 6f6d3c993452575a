"""Scenario fixtures with Twilio switched on: the app pages through the fake Twilio, and the
fake's phones answer, press keys and text back through signed webhooks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from twilio.request_validator import RequestValidator

from app.container import build
from app.main import create_app
from app.settings import Settings, TwilioSettings
from providers.fake import ScriptedSender
from routing.clock import FakeClock
from routing.report.models import Report
from tests.fakes.twilio import FakeSms, FakeTwilio
from tests.harness import Harness, reference_and_phone

ACCOUNT_SID = "AC" + "a1" * 16
AUTH_TOKEN = "sos-router-test-token"
SOS_NUMBER = "+31201234567"
PUBLIC = "https://sos.example.test"
API_BASE = "https://api.twilio.test"
ANNA, BRAM, CUSTOMER = "+31611111111", "+31622222222", "+31612345678"


@dataclass
class Twilio:
    h: Harness
    fake: FakeTwilio

    async def signed_post(self, path: str, params: dict[str, str]) -> httpx.Response:
        """A webhook as Twilio would send it (for events the fake does not play itself)."""
        signature = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC + path, params)
        return await self.h.client.post(
            path,
            content=urlencode(params),
            headers={
                "X-Twilio-Signature": signature,
                "Content-Type": "application/x-www-form-urlencoded",
            },
        )

    async def expect_receipt(self, report: Report | Mapping[str, Any]) -> FakeSms:
        """The receipt SMS to the customer of a report made on the SOS line or by SMS."""
        reference, phone = reference_and_phone(report)
        sms = await self.fake.expect_sms(to=phone)
        assert sms.body.startswith(
            (f"SOS-melding {reference} ontvangen.", f"SOS report {reference} received.")
        ), sms.body
        return sms

    async def expect_accepted_sms(self, report: Report | Mapping[str, Any], *, by: str) -> FakeSms:
        """ "Anna van het fraudeteam belt u nu": the SMS to the customer of `report` once `by`
        accepted it, naming their first name."""
        reference, phone = reference_and_phone(report)
        sms = await self.fake.expect_sms(to=phone)
        assert f"{reference}: {by.split()[0]} " in sms.body, sms.body
        return sms


@pytest.fixture
async def tw(
    settings: Settings, clock: FakeClock, sender: ScriptedSender, clean_db: None
) -> AsyncIterator[Twilio]:
    del clean_db
    twilio_settings = settings.model_copy(
        update={
            "public_base_url": PUBLIC,
            "twilio": TwilioSettings.model_validate(
                {
                    "account_sid": ACCOUNT_SID,
                    "auth_token": AUTH_TOKEN,
                    "from_number": SOS_NUMBER,
                    "api_base": API_BASE,
                }
            ),
        }
    )
    fake = FakeTwilio(ACCOUNT_SID, AUTH_TOKEN, public_base_url=PUBLIC, clock=clock)
    http = httpx.AsyncClient(
        transport=fake.transport, base_url=API_BASE, auth=(ACCOUNT_SID, AUTH_TOKEN)
    )
    container = build(twilio_settings, clock=clock, http=http, raise_errors=True)
    app = create_app(container, run_engine=False)
    fake.webhook_transport = httpx.ASGITransport(app=app)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC)
    h = Harness(client, container, clock, sender)
    await h.setup()
    try:
        yield Twilio(h, fake)
        fake.assert_clean()
    finally:
        await client.aclose()
        await http.aclose()
        await container.close()
