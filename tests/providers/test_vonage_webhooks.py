"""Vonage as the only voice and SMS provider, end to end: pages ring the fake Vonage's phones;
keypresses, voicemail, SMS replies and status webhooks drive the report; forged or stale webhooks
are refused and replays change nothing. The fake fails on any call or SMS nobody expected."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select

from app.container import build
from app.main import create_app
from app.settings import Settings
from providers.fake import ScriptedSender
from providers.vonage.auth import ApplicationJwt
from routing.audit.models import AuditEvent
from routing.clock import FakeClock
from routing.inbound.models import InboundMessage
from routing.notify.models import OutboundMessage
from tests.fakes.vonage import (
    API_BASE,
    API_KEY,
    APPLICATION_ID,
    SIGNATURE_SECRET,
    FakeVonage,
    compact,
    key_pair,
    signed_headers,
    vonage_settings,
)
from tests.harness import Harness, types

PUBLIC = "https://sos.example.test"
OURS = "+31201234567"
ANNA, BRAM, CUSTOMER = "+31611111111", "+31622222222", "+31612345678"


@dataclass
class Vonage:
    h: Harness
    fake: FakeVonage


@pytest.fixture
async def vn(
    settings: Settings, clock: FakeClock, sender: ScriptedSender, clean_db: None
) -> AsyncIterator[Vonage]:
    del clean_db
    private, public = key_pair()
    configured = settings.model_copy(
        update={"public_base_url": PUBLIC, "vonage": vonage_settings(OURS)}
    )
    fake = FakeVonage(APPLICATION_ID, public, SIGNATURE_SECRET, public_base_url=PUBLIC, clock=clock)
    auth = ApplicationJwt(APPLICATION_ID, private)
    http = httpx.AsyncClient(transport=fake.transport, base_url=API_BASE, auth=auth)
    container = build(configured, clock=clock, vonage_http=http, raise_errors=True)
    app = create_app(container, run_engine=False)
    fake.webhook_transport = httpx.ASGITransport(app=app)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC)
    h = Harness(client, container, clock, sender)
    await h.setup()
    try:
        yield Vonage(h, fake)
        fake.assert_clean()
    finally:
        await client.aclose()
        await http.aclose()
        await container.close()


async def _voice_then_sms(v: Vonage) -> dict[str, object]:
    await v.h.staff("Anna", ANNA)
    await v.h.staff("Bram", BRAM, languages=["en"])
    await v.h.chain(("voice", ["Anna"], 60), ("sms", ["Bram"], 60))
    report = await v.h.report(callback_phone="06 12345678")
    await v.h.tick()
    return report


async def test_accept_by_keypress_then_the_customer_is_called_into_the_room(vn: Vonage) -> None:
    report = await _voice_then_sms(vn)
    call = await vn.fake.expect_call(to=ANNA)
    assert call.from_ == OURS

    await call.answer()
    spoken = " ".join(call.heard)
    assert "fraude" in spoken
    assert ", ".join(str(report["reference"])) in spoken
    assert "12345678" not in spoken  # never the customer's number
    await call.press("1")

    assert call.room == f"sos-{report['id']}"
    seen = await vn.h.get(str(report["id"]))
    assert seen["acknowledged_by"]["name"] == "Anna"
    await vn.h.tick()
    customer = await vn.fake.expect_bridge_call(to=CUSTOMER)
    assert customer.from_ == OURS
    assert customer.body["ncco"][0]["name"] == call.room
    accepted = await vn.fake.expect_sms(to=CUSTOMER)  # "Anna ... belt u nu"
    assert f"{report['reference']}: Anna " in accepted.text
    await vn.h.advance(120)  # no SMS to Bram: the chain stopped at the keypress


async def test_another_key_or_silence_is_not_an_acceptance(vn: Vonage) -> None:
    report = await _voice_then_sms(vn)
    call = await vn.fake.expect_call(to=ANNA)
    await call.answer()
    await call.press("2")
    assert call.status == "completed"  # the NCCO ended: Vonage hung up
    await vn.h.tick()
    await vn.fake.expect_sms(to=BRAM)  # a call that ends without a 1 is a missed page
    assert (await vn.h.get(str(report["id"])))["acknowledged_at"] is None


async def test_voicemail_is_never_a_human_and_is_hung_up(vn: Vonage) -> None:
    report = await _voice_then_sms(vn)
    call = await vn.fake.expect_call(to=ANNA)
    await call.answer(human=False)  # machine detection hears the voicemail greeting
    await vn.h.tick()
    await vn.fake.flush()
    assert call.ended_by == "api"
    await vn.fake.expect_sms(to=BRAM)
    seen = await vn.h.get(str(report["id"]))
    assert seen["acknowledged_at"] is None
    assert "voicemail" in " ".join(e["detail"] for e in seen["timeline"])


async def test_no_answer_moves_on_at_once(vn: Vonage) -> None:
    await _voice_then_sms(vn)
    call = await vn.fake.expect_call(to=ANNA)
    await call.no_answer()
    await vn.h.tick()  # the fake clock has not moved: no waiting out the 60 s
    sms = await vn.fake.expect_sms(to=BRAM)
    assert "Reply 1" in sms.text


async def test_accept_by_sms_reply_the_answer_comes_as_a_text(vn: Vonage) -> None:
    await vn.h.staff("Anna", ANNA)
    await vn.h.chain(("sms", ["Anna"], 60))
    report = await vn.h.report()
    await vn.h.tick()
    sms = await vn.fake.expect_sms(to=ANNA)
    assert str(report["reference"]) in sms.text
    await sms.deliver()

    answered = await vn.fake.send_sms(from_=ANNA, text="  ok ", to=OURS)

    assert answered.status_code == 204
    assert (await vn.h.get(str(report["id"])))["acknowledged_by"]["name"] == "Anna"
    await vn.h.tick()
    reply = await vn.fake.expect_sms(to=ANNA)
    assert "Aangenomen" in reply.text
    assert str(report["reference"]) in reply.text
    await vn.fake.expect_bridge_call(to=ANNA)
    await vn.fake.expect_bridge_call(to=str(report["callback_phone"]))
    await vn.fake.expect_sms(to=str(report["callback_phone"]))


async def test_a_redelivered_inbound_sms_is_handled_once(vn: Vonage) -> None:
    await vn.h.staff("Anna", ANNA)
    payload = {
        "channel": "sms",
        "message_uuid": str(uuid.uuid4()),
        "to": OURS[1:],
        "from": ANNA[1:],
        "timestamp": vn.h.clock.now().isoformat(),
        "text": "hallo?",
        "message_type": "text",
    }
    for _ in range(2):
        response = await vn.fake.post(PUBLIC + "/webhooks/vonage/sms", payload)
        assert response.status_code == 204
    await vn.h.tick()
    help_text = await vn.fake.expect_sms(to=ANNA)  # one help text, not two
    assert help_text.text
    assert await vn.h.count(InboundMessage) == 1


async def test_rejected_sms_moves_on_at_once(vn: Vonage) -> None:
    await vn.h.staff("Anna", ANNA)
    await vn.h.staff("Bram", BRAM)
    await vn.h.chain(("sms", ["Anna"], 60), ("voice", ["Bram"], 60))
    report = await vn.h.report()
    await vn.h.tick()
    sms = await vn.fake.expect_sms(to=ANNA)
    await sms.reject()
    await vn.h.tick()
    await vn.fake.expect_call(to=BRAM)
    assert "SMS rejected" in " ".join(
        e["detail"] for e in (await vn.h.get(str(report["id"])))["timeline"]
    )


async def test_replayed_status_webhooks_change_nothing(vn: Vonage) -> None:
    await vn.h.staff("Anna", ANNA)
    await vn.h.staff("Bram", BRAM)
    await vn.h.chain(("sms", ["Anna"], 60), ("voice", ["Bram"], 60))
    report = await vn.h.report()
    await vn.h.tick()
    sms = await vn.fake.expect_sms(to=ANNA, duplicate=True)  # every webhook posted twice
    await sms.deliver()
    await vn.h.tick()
    seen = await vn.h.get(str(report["id"]))
    assert types(seen).count("page_delivered") == 1
    await vn.h.advance(60)
    call = await vn.fake.expect_call(to=BRAM, duplicate=True)
    await call.no_answer()
    await vn.h.tick()
    seen = await vn.h.get(str(report["id"]))
    assert types(seen).count("page_failed") == 1


async def test_a_timed_out_sms_cannot_be_looked_up_and_is_given_up(vn: Vonage) -> None:
    await vn.h.staff("Anna", ANNA)
    await vn.h.staff("Bram", BRAM)
    await vn.h.chain(("sms", ["Anna"], 600), ("voice", ["Bram"], 60))
    vn.fake.hang_next("messages")  # Vonage took it, but our request timed out
    report = await vn.h.report()
    await vn.h.tick()
    await vn.fake.expect_sms(to=ANNA)  # exactly one: no blind second send
    await vn.h.advance(30)  # the reconciler: Vonage cannot look a message up
    await vn.fake.expect_call(to=BRAM)
    seen = await vn.h.get(str(report["id"]))
    assert "page_unknown" in types(seen)
    assert "possible duplicate" in " ".join(e["detail"] for e in seen["timeline"])


class TestSignatures:
    async def _post(self, v: Vonage, body: bytes, headers: dict[str, str]) -> httpx.Response:
        return await v.h.client.post("/webhooks/vonage/sms", content=body, headers=headers)

    def _inbound(self) -> bytes:
        message = {"message_uuid": str(uuid.uuid4()), "from": CUSTOMER[1:], "to": OURS[1:]}
        return compact(message | {"channel": "sms", "text": "help", "message_type": "text"})

    async def test_forged_unsigned_tampered_and_stale_webhooks_are_refused(
        self, vn: Vonage
    ) -> None:
        body, now = self._inbound(), vn.h.clock.now()

        def signed(secret: str = SIGNATURE_SECRET, at: timedelta = timedelta()) -> dict[str, str]:
            return signed_headers(
                body, secret=secret, issued_at=now + at, api_key=API_KEY, application_id="x"
            )

        forged = signed("not-our-secret-0123456789abcdef0123456789")
        tampered_body = body.replace(b"help", b"HELP")
        refused = [
            await self._post(vn, body, {"Content-Type": "application/json"}),
            await self._post(vn, body, forged),
            await self._post(vn, tampered_body, signed()),
            await self._post(vn, body, signed(at=timedelta(minutes=-10))),  # a late replay
        ]

        assert [r.status_code for r in refused] == [403, 403, 403, 403]
        assert refused[0].json()["error"]["code"] == "forbidden"
        async with vn.h.container.db() as session:
            about_reports = AuditEvent.report_id.is_not(None)  # the admin's setup is logged too
            assert await session.scalar(select(AuditEvent.id).where(about_reports)) is None
            assert await session.scalar(select(func.count()).select_from(OutboundMessage)) == 0

    async def test_a_signed_body_that_is_not_json_is_a_clear_client_error(self, vn: Vonage) -> None:
        body = b"MessageSid=SM1&Body=help"
        response = await self._post(
            vn,
            body,
            signed_headers(
                body,
                secret=SIGNATURE_SECRET,
                issued_at=vn.h.clock.now(),
                api_key=API_KEY,
                application_id=APPLICATION_ID,
            ),
        )
        assert response.status_code == 422
        assert response.json()["error"]["field"] == "body"
