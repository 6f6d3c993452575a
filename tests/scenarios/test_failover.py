"""Twilio and Vonage both on: Twilio carries the pages, and when it fails (errors, timeouts,
silence) Vonage takes over within the step, staff accept there, and Twilio gets the traffic back
after the cool-down. Both fakes fail the test on any call or SMS nobody expected, so a page the
failover sent twice would show."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from app.container import build
from app.main import create_app
from app.settings import FailoverSettings, Settings, TwilioSettings
from providers.base import Channel
from providers.fake import ScriptedSender
from providers.vonage.auth import ApplicationJwt
from routing.clock import FakeClock
from tests.fakes import vonage as fake_vonage
from tests.fakes.twilio import FakeTwilio
from tests.fakes.vonage import FakeVonage, key_pair, vonage_settings
from tests.harness import Harness, types
from tests.scenarios.twilio_harness import ACCOUNT_SID, API_BASE, AUTH_TOKEN, PUBLIC, SOS_NUMBER

VONAGE_NUMBER = "+31201234568"
ANNA, BRAM, CUSTOMER = "+31611111111", "+31622222222", "+31612345678"


@dataclass
class Both:
    h: Harness
    twilio: FakeTwilio
    vonage: FakeVonage

    def breakers(self, channel: Channel) -> dict[str, str]:
        failover = self.h.container.failover(channel)
        assert failover is not None
        return failover.state()


@pytest.fixture
async def both(
    settings: Settings, clock: FakeClock, sender: ScriptedSender, clean_db: None
) -> AsyncIterator[Both]:
    del clean_db
    private, public = key_pair()
    configured = settings.model_copy(
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
            "vonage": vonage_settings(VONAGE_NUMBER),
            # Small numbers, so each scenario needs only a few pages to open the breaker.
            "failover": FailoverSettings(
                failures_in_a_row=2, cooldown_seconds=60, receipt_seconds=30
            ),
        }
    )
    twilio = FakeTwilio(ACCOUNT_SID, AUTH_TOKEN, public_base_url=PUBLIC, clock=clock)
    vonage = FakeVonage(
        fake_vonage.APPLICATION_ID,
        public,
        fake_vonage.SIGNATURE_SECRET,
        public_base_url=PUBLIC,
        clock=clock,
    )
    twilio_http = httpx.AsyncClient(
        transport=twilio.transport, base_url=API_BASE, auth=(ACCOUNT_SID, AUTH_TOKEN)
    )
    vonage_http = httpx.AsyncClient(
        transport=vonage.transport,
        base_url=fake_vonage.API_BASE,
        auth=ApplicationJwt(fake_vonage.APPLICATION_ID, private),
    )
    container = build(
        configured, clock=clock, http=twilio_http, vonage_http=vonage_http, raise_errors=True
    )
    app = create_app(container, run_engine=False)
    twilio.webhook_transport = vonage.webhook_transport = httpx.ASGITransport(app=app)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC)
    h = Harness(client, container, clock, sender)
    await h.setup()
    try:
        yield Both(h, twilio, vonage)
        twilio.assert_clean()
        vonage.assert_clean()
    finally:
        await client.aclose()
        await twilio_http.aclose()
        await vonage_http.aclose()
        await container.close()


async def test_a_twilio_outage_moves_paging_to_vonage_and_staff_accept_there(both: Both) -> None:
    h = both.h
    await h.staff("Anna", ANNA)
    await h.staff("Bram", BRAM)
    await h.chain(("voice", ["Anna"], 60), ("voice", ["Bram"], 60))
    both.twilio.fail_next("Calls", 500, 20500)  # the call may exist: never resent elsewhere
    report = await h.report(callback_phone="06 12345678")
    await h.tick()
    assert both.vonage.calls == []
    assert both.breakers(Channel.VOICE) == {"twilio": "closed", "vonage": "closed"}

    both.twilio.drop_next("Calls")  # and then Twilio cannot be reached at all
    await h.advance(60)

    call = await both.vonage.expect_call(to=BRAM)  # step 2 went straight to Vonage
    assert call.from_ == VONAGE_NUMBER
    assert both.breakers(Channel.VOICE) == {"twilio": "open", "vonage": "closed"}
    await call.answer()
    await call.press("1")
    seen = await h.get(str(report["id"]))
    assert seen["acknowledged_by"]["name"] == "Bram"
    assert seen["sla"]["met"] is True
    assert "page_unknown" in types(seen)  # Anna's page: left to the reconciler

    await h.tick()
    customer = await both.vonage.expect_bridge_call(to=CUSTOMER)  # into Bram's Vonage room
    assert customer.body["ncco"][0]["name"] == call.room
    accepted = await both.twilio.expect_sms(to=CUSTOMER)  # Twilio's SMS never failed
    assert f"{report['reference']}: Bram " in accepted.body
    await h.advance(120)  # nothing more for anyone


async def test_traffic_switches_back_to_twilio_after_the_cooldown(both: Both) -> None:
    h = both.h
    await h.staff("Anna", ANNA)
    await h.chain(("sms", ["Anna"], 600))

    async def page_anna() -> None:
        await h.report()
        await h.tick()
        h.clock.advance(1)

    for _ in range(2):  # Twilio unreachable twice: each page goes to Vonage at once
        both.twilio.drop_next("Messages")
        await page_anna()
        await (await both.vonage.expect_sms(to=ANNA)).deliver()
    assert both.breakers(Channel.SMS) == {"twilio": "open", "vonage": "closed"}

    await page_anna()  # during the cool-down Twilio is not even asked
    await (await both.vonage.expect_sms(to=ANNA)).deliver()
    assert both.twilio.messages == []

    h.clock.advance(60)  # Twilio has recovered; after the cool-down one trial goes there
    await page_anna()
    await (await both.twilio.expect_sms(to=ANNA)).deliver()
    assert both.breakers(Channel.SMS) == {"twilio": "closed", "vonage": "closed"}
    await page_anna()
    await (await both.twilio.expect_sms(to=ANNA)).deliver()


async def test_missing_delivery_receipts_on_twilio_trip_the_breaker(both: Both) -> None:
    h = both.h
    await h.staff("Anna", ANNA)
    await h.chain(("sms", ["Anna"], 600))

    await h.report()
    await h.tick()
    await (await both.twilio.expect_sms(to=ANNA)).deliver()  # Twilio reports this one
    for _ in range(2):
        h.clock.advance(1)
        await h.report()
        await h.tick()
        await both.twilio.expect_sms(to=ANNA)  # accepted, but Twilio never calls back
    h.clock.advance(29)
    assert both.breakers(Channel.SMS)["twilio"] == "closed"  # not late yet

    h.clock.advance(1)
    await h.report()
    await h.tick()

    await both.vonage.expect_sms(to=ANNA)
    assert both.breakers(Channel.SMS) == {"twilio": "open", "vonage": "closed"}


async def test_the_customer_joins_the_acceptors_room_even_once_twilio_is_back(both: Both) -> None:
    h = both.h
    carla = "+31633333333"
    await h.staff("Anna", ANNA)
    await h.staff("Bram", BRAM)
    await h.staff("Carla", carla)
    await h.chain(("voice", ["Anna", "Bram"], 600), categories=["fraud"])
    await h.chain(("voice", ["Carla"], 600), categories=["lost_card"], name="cards")
    both.twilio.drop_next("Calls")
    both.twilio.drop_next("Calls")
    report = await h.report(callback_phone="06 12345678")
    await h.tick()
    anna = await both.vonage.expect_call(to=ANNA)
    bram = await both.vonage.expect_call(to=BRAM)
    await anna.answer()
    await bram.ring()

    await h.advance(60)  # the cool-down is over, and Twilio has recovered
    await h.report(category="lost_card")
    await h.tick()
    await (await both.twilio.expect_call(to=carla)).ring()
    assert both.breakers(Channel.VOICE)["twilio"] == "closed"

    await anna.press("1")  # Anna is in a room on Vonage
    await h.tick()
    customer = await both.vonage.expect_bridge_call(to=CUSTOMER)
    assert customer.body["ncco"][0]["name"] == anna.room == f"sos-{report['id']}"
    await both.vonage.flush()
    assert bram.ended_by == "api"  # his ringing call was ended on Vonage, where it rang
    await both.twilio.expect_sms(to=CUSTOMER)
