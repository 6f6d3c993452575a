"""The fake Twilio itself, driven against a tiny stand-in app: a fake that is wrong makes every
later test lie, so each behaviour our adapter and webhooks rely on is pinned here."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from fastapi import FastAPI, HTTPException, Request, Response
from twilio.request_validator import RequestValidator

from routing.clock import FakeClock
from tests.fakes.twilio import CONTRACT_CODE, FakeCall, FakeTwilio

BASE = "https://sos.example.test"
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "test-auth-token"
STAFF = "+31612345678"
CUSTOMER = "+31687654321"
OURS = "+3197010000001"
PREFIX = f"/2010-04-01/Accounts/{ACCOUNT_SID}"
ALL_EVENTS = ["initiated", "ringing", "answered", "completed"]

PAGE_TWIML = (
    f'<Response><Gather input="dtmf" numDigits="1" action="{BASE}/voice/digits?page=P1">'
    "<Say>Press 1</Say></Gather></Response>"
)
THANKS_TWIML = "<Response><Say>Thanks</Say></Response>"
BRIDGE_TWIML = "<Response><Dial><Conference>sos-R1</Conference></Dial></Response>"
REDIRECT_TWIML = (
    f"<Response><Say>One moment</Say><Redirect>{BASE}/voice/page?page=P1</Redirect></Response>"
)
SMS_REPLY = "<Response><Message>ok</Message></Response>"


# --- the stand-in app -------------------------------------------------------------------------


@dataclass
class Received:
    path: str
    query: str
    params: dict[str, str]
    signature: str
    token: str


def xml(body: str) -> Response:
    return Response(body, media_type="text/xml")


def stand_in_app(received: list[Received]) -> FastAPI:
    """Answers like our app should, after checking `X-Twilio-Signature` the way ours does."""
    app = FastAPI()
    validator = RequestValidator(AUTH_TOKEN)

    async def verified(request: Request) -> dict[str, str]:
        params = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        query = request.scope["query_string"].decode()
        url = BASE + request.scope["raw_path"].decode() + (f"?{query}" if query else "")
        signature = request.headers.get("X-Twilio-Signature", "")
        if not validator.validate(url, params, signature):
            raise HTTPException(status_code=403, detail="bad signature")
        token = request.headers.get("I-Twilio-Idempotency-Token", "")
        received.append(Received(request.url.path, query, params, signature, token))
        return params

    @app.post("/voice/page")
    @app.post("/webhooks/twilio/voice")
    async def page(request: Request) -> Response:
        await verified(request)
        return xml(PAGE_TWIML)

    @app.post("/voice/digits")
    async def digits(request: Request) -> Response:
        params = await verified(request)
        replies = {"1": THANKS_TWIML, "9": BRIDGE_TWIML}
        return xml(replies.get(params["Digits"], "<Response><Hangup/></Response>"))

    @app.post("/voice/redirect")
    async def redirect(request: Request) -> Response:
        await verified(request)
        return xml(REDIRECT_TWIML)

    @app.post("/voice/status")
    @app.post("/voice/amd")
    @app.post("/sms/status")
    async def status(request: Request) -> Response:
        await verified(request)
        return Response(status_code=204)

    @app.post("/voice/status-wrong")
    async def status_wrong(request: Request) -> Response:
        await verified(request)
        return Response("ok", media_type="text/plain")

    @app.post("/webhooks/twilio/sms")
    async def sms(request: Request) -> Response:
        params = await verified(request)
        return xml("<Response/>" if params["Body"] == "quiet" else SMS_REPLY)

    return app


# --- fixtures and helpers ---------------------------------------------------------------------


@pytest.fixture
def received() -> list[Received]:
    return []


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake(received: list[Received], clock: FakeClock) -> Iterator[FakeTwilio]:
    transport = httpx.ASGITransport(app=stand_in_app(received))
    twilio = FakeTwilio(ACCOUNT_SID, AUTH_TOKEN, webhook_transport=transport, clock=clock)
    yield twilio
    twilio.assert_clean()


@pytest.fixture
async def rest(fake: FakeTwilio) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=fake.transport, base_url="https://api.twilio.test", auth=(ACCOUNT_SID, AUTH_TOKEN)
    ) as client:
        yield client


def call_form(**overrides: Any) -> dict[str, Any]:
    form: dict[str, Any] = {
        "To": STAFF,
        "From": OURS,
        "Url": f"{BASE}/voice/page?page=P1",
        "StatusCallback": f"{BASE}/voice/status?page=P1",
        "StatusCallbackEvent": ALL_EVENTS,
        "Timeout": "25",
        "MachineDetection": "Enable",
        "AsyncAmd": "true",
        "AsyncAmdStatusCallback": f"{BASE}/voice/amd?page=P1",
    }
    form.update(overrides)
    return {name: value for name, value in form.items() if value is not None}


def sms_form(**overrides: Any) -> dict[str, Any]:
    form = {
        "To": STAFF,
        "From": OURS,
        "Body": "SOS fraud report 481: reply 1 to accept",
        "StatusCallback": f"{BASE}/sms/status?page=P2",
        "ValidityPeriod": "300",
    }
    form.update(overrides)
    return {name: value for name, value in form.items() if value is not None}


async def create_call(rest: httpx.AsyncClient, **overrides: Any) -> httpx.Response:
    return await rest.post(f"{PREFIX}/Calls.json", data=call_form(**overrides))


async def create_sms(rest: httpx.AsyncClient, **overrides: Any) -> httpx.Response:
    return await rest.post(f"{PREFIX}/Messages.json", data=sms_form(**overrides))


def take_errors(fake: FakeTwilio) -> str:
    """The recorded errors as one string; clears them so teardown stays clean."""
    errors = "\n".join(fake.errors)
    fake.errors.clear()
    return errors


def at(received: list[Received], path: str, field: str = "CallStatus") -> list[str]:
    return [r.params[field] for r in received if r.path == path]


async def answered_call(rest: httpx.AsyncClient, fake: FakeTwilio, **form: Any) -> FakeCall:
    assert (await create_call(rest, **form)).status_code == 201
    call = await fake.expect_call(to=STAFF)
    await call.answer()
    return call


# --- REST: the contract -----------------------------------------------------------------------


class TestCreateCall:
    async def test_a_valid_create_passes_the_spec(
        self, rest: httpx.AsyncClient, fake: FakeTwilio
    ) -> None:
        r = await create_call(rest)

        assert r.status_code == 201, r.text
        body = r.json()
        assert re.fullmatch(r"CA[0-9a-f]{32}", body["sid"])
        assert (body["status"], body["to"], body["from"]) == ("queued", STAFF, OURS)
        call = await fake.expect_call(to=STAFF)
        assert call.sid == body["sid"]
        assert call.form["StatusCallbackEvent"] == ALL_EVENTS
        assert fake.errors == []

    async def test_timeout_abc_fails_the_test(
        self, rest: httpx.AsyncClient, fake: FakeTwilio
    ) -> None:
        r = await create_call(rest, Timeout="abc")

        assert r.status_code == 400
        assert r.json()["code"] == CONTRACT_CODE
        assert fake.calls == []
        with pytest.raises(AssertionError, match="cast value to integer type: abc"):
            fake.assert_clean()
        take_errors(fake)

    async def test_wrong_auth_is_401_20003(self, fake: FakeTwilio) -> None:
        async with httpx.AsyncClient(
            transport=fake.transport, base_url="https://api.twilio.test", auth=(ACCOUNT_SID, "no")
        ) as client:
            r = await client.post(f"{PREFIX}/Calls.json", data=call_form())

        assert r.status_code == 401
        assert r.json()["code"] == 20003
        assert fake.calls == []

    async def test_url_and_twiml_together_break_the_vendor_rule(
        self, rest: httpx.AsyncClient, fake: FakeTwilio
    ) -> None:
        r = await create_call(rest, Twiml="<Response/>")

        assert r.status_code == 400
        assert "exactly one of Url/Twiml/ApplicationSid" in take_errors(fake)

    async def test_typos_and_relative_urls_are_caught(
        self, rest: httpx.AsyncClient, fake: FakeTwilio
    ) -> None:
        r = await create_call(rest, StatusCallbackEvents="answered", StatusCallback="/voice/status")

        assert r.status_code == 400
        errors = take_errors(fake)
        assert "unknown parameter StatusCallbackEvents" in errors
        assert "StatusCallback='/voice/status' is no absolute URL" in errors

    async def test_space_separated_events_are_wrong_for_calls(
        self, rest: httpx.AsyncClient, fake: FakeTwilio
    ) -> None:
        r = await create_call(rest, StatusCallbackEvent="initiated ringing answered completed")

        assert r.status_code == 400
        assert "one StatusCallbackEvent per key" in take_errors(fake)

    async def test_ranges_and_enums_from_the_prose_are_checked(
        self, rest: httpx.AsyncClient, fake: FakeTwilio
    ) -> None:
        r = await create_call(rest, Timeout="601", AsyncAmd="True")

        assert r.status_code == 400
        errors = take_errors(fake)
        assert "Timeout='601' is outside" in errors
        assert "AsyncAmd='True' is outside" in errors

    async def test_an_invalid_to_is_21211_and_not_a_test_failure(
        self, rest: httpx.AsyncClient, fake: FakeTwilio
    ) -> None:
        r = await create_call(rest, To="0612345678")

        assert (r.status_code, r.json()["code"]) == (400, 21211)
        assert fake.errors == []

    async def test_get_of_an_unknown_sid_is_404_20404(
        self, rest: httpx.AsyncClient, fake: FakeTwilio
    ) -> None:
        r = await rest.get(f"{PREFIX}/Calls/CA{'0' * 32}.json")

        assert r.status_code == 404
        assert set(r.json()) == {"code", "message", "more_info", "status"}
        assert r.json()["code"] == 20404
        assert fake.errors == []


class TestInlineTwimlCall:
    """A call that only speaks (a verification code): `Twiml` instead of `Url`."""

    def spoken_form(self, twiml: str) -> dict[str, Any]:
        return call_form(
            Url=None,
            Twiml=twiml,
            StatusCallbackEvent=None,
            MachineDetection=None,
            AsyncAmd=None,
            AsyncAmdStatusCallback=None,
        )

    async def test_it_passes_the_spec_and_says_its_text_when_answered(
        self, rest: httpx.AsyncClient, fake: FakeTwilio, received: list[Received]
    ) -> None:
        r = await rest.post(f"{PREFIX}/Calls.json", data=self.spoken_form(THANKS_TWIML))
        assert r.status_code == 201, r.text
        call = await fake.expect_call(to=STAFF)

        await call.answer()

        assert call.heard == ["Thanks"]
        assert call.status == "completed"  # nothing left to say: Twilio hangs up
        assert at(received, "/voice/status") == ["completed"]  # only the final event
        assert fake.errors == []

    async def test_an_unexpected_spoken_call_fails_the_test(
        self, rest: httpx.AsyncClient, fake: FakeTwilio
    ) -> None:
        await rest.post(f"{PREFIX}/Calls.json", data=self.spoken_form(THANKS_TWIML))

        with pytest.raises(AssertionError, match="unexpected <FakeCall call"):
            fake.assert_clean()
        await fake.expect_call(to=STAFF)

    @pytest.mark.parametrize(
        ("twiml", "problem"),
        [
            ("<Response><Say>unclosed</Response>", "Twiml is not well-formed XML"),
            ("<Say>Hi</Say>", "Twiml has <Say> at its root"),
            ("<Response><Message>Hi</Message></Response>", "Twiml holds <Message>"),
            ("<Response><Say>" + "x" * 4000 + "</Say></Response>", "more than 4000"),
        ],
    )
    async def test_bad_twiml_breaks_the_contract(
        self, rest: httpx.AsyncClient, fake: FakeTwilio, twiml: str, problem: str
    ) -> None:
        r = await rest.post(f"{PREFIX}/Calls.json", data=self.spoken_form(twiml))

        assert r.status_code == 400
        assert problem in take_errors(fake)
        assert fake.calls == []


class TestCreateMessage:
    async def test_a_message_needs_a_body(self, rest: httpx.AsyncClient, fake: FakeTwilio) -> None:
        r = await create_sms(rest, Body=None)

        assert r.status_code == 400
        assert "one of Body/MediaUrl/ContentSid is required" in take_errors(fake)

    async def test_a_bad_messaging_service_sid_breaks_the_spec(
        self, rest: httpx.AsyncClient, fake: FakeTwilio
    ) -> None:
        r = await create_sms(rest, From=None, MessagingServiceSid="XX123")

        assert r.status_code == 400
        assert "does not match '^MG[0-9a-fA-F]{32}$'" in take_errors(fake)


# --- REST: faults -----------------------------------------------------------------------------


class TestFaults:
    async def test_fail_next_429_then_success(
        self, rest: httpx.AsyncClient, fake: FakeTwilio
    ) -> None:
        fake.fail_next("Calls", 429, 20429, retry_after=2)

        first = await create_call(rest)
        second = await create_call(rest)

        assert (first.status_code, first.json()["code"]) == (429, 20429)
        assert first.headers["Retry-After"] == "2"
        assert second.status_code == 201
        assert len(fake.calls) == 1
        await fake.expect_call(to=STAFF)

    async def test_fail_next_21211_hits_only_its_resource(
        self, rest: httpx.AsyncClient, fake: FakeTwilio
    ) -> None:
        fake.fail_next("Messages", 400, 21211)

        call = await create_call(rest)
        sms = await create_sms(rest)

        assert call.status_code == 201
        assert (sms.status_code, sms.json()["code"]) == (400, 21211)
        assert fake.messages == []
        await fake.expect_call(to=STAFF)

    async def test_hang_next_creates_then_times_out(
        self, rest: httpx.AsyncClient, fake: FakeTwilio
    ) -> None:
        fake.hang_next("Calls")

        with pytest.raises(httpx.ReadTimeout):
            await create_call(rest)

        listed = await rest.get(f"{PREFIX}/Calls.json", params={"To": STAFF, "Status": "queued"})
        assert listed.status_code == 200
        [found] = listed.json()["calls"]
        fetched = await rest.get(f"{PREFIX}/Calls/{found['sid']}.json")
        assert fetched.json()["status"] == "queued"
        assert (await fake.expect_call(to=STAFF)).sid == found["sid"]

    async def test_drop_next_creates_nothing(
        self, rest: httpx.AsyncClient, fake: FakeTwilio
    ) -> None:
        fake.drop_next("Messages")

        with pytest.raises(httpx.ConnectTimeout):
            await create_sms(rest)

        assert fake.messages == []


# --- the phone --------------------------------------------------------------------------------


class TestCall:
    async def test_answer_then_press_1_hears_thanks(
        self, rest: httpx.AsyncClient, fake: FakeTwilio
    ) -> None:
        call = await answered_call(rest, fake)
        assert call.heard == ["Press 1"]
        assert call.gather is not None
        assert call.gather.action == f"{BASE}/voice/digits?page=P1"

        await call.press("1")

        assert call.heard == ["Press 1", "Thanks"]
        assert (call.status, call.ended_by) == ("completed", "twiml")

    async def test_a_redirect_is_followed(self, rest: httpx.AsyncClient, fake: FakeTwilio) -> None:
        call = await answered_call(rest, fake, Url=f"{BASE}/voice/redirect")

        assert call.heard == ["One moment", "Press 1"]
        await call.press("2")
        assert (call.status, call.ended_by) == ("completed", "twiml")  # <Hangup/>

    async def test_a_bridge_records_the_room_and_holds_the_line(
        self, rest: httpx.AsyncClient, fake: FakeTwilio
    ) -> None:
        call = await answered_call(rest, fake)

        await call.press("9")

        assert (call.conference, call.status) == ("sos-R1", "in-progress")
        await call.hang_up()
        assert (call.status, call.ended_by) == ("completed", "phone")

    async def test_no_input_falls_through_the_gather(
        self, rest: httpx.AsyncClient, fake: FakeTwilio
    ) -> None:
        call = await answered_call(rest, fake)

        await call.no_input()

        assert (call.status, call.ended_by) == ("completed", "twiml")
        with pytest.raises(AssertionError, match="is completed"):
            await call.press("1")

    async def test_status_callbacks_arrive_signed_and_in_sequence(
        self,
        rest: httpx.AsyncClient,
        fake: FakeTwilio,
        received: list[Received],
        clock: FakeClock,
    ) -> None:
        call = await answered_call(rest, fake)
        clock.advance(30)
        await call.hang_up()

        statuses = [r for r in received if r.path == "/voice/status"]
        assert [r.params["CallStatus"] for r in statuses] == [
            "initiated",
            "ringing",
            "in-progress",
            "completed",
        ]
        assert [r.params["SequenceNumber"] for r in statuses] == ["0", "1", "2", "3"]
        assert {r.query for r in statuses} == {"page=P1"}
        first = statuses[0].params
        assert first["CallbackSource"] == "call-progress-events"
        assert (first["Direction"], first["ApiVersion"]) == ("outbound-api", "2010-04-01")
        assert (first["CallSid"], first["AccountSid"]) == (call.sid, ACCOUNT_SID)
        assert statuses[-1].params["CallDuration"] == "30"
        assert at(received, "/voice/page") == ["in-progress"]

    async def test_the_signature_matches_an_independent_recomputation(
        self, rest: httpx.AsyncClient, fake: FakeTwilio, received: list[Received]
    ) -> None:
        await answered_call(rest, fake)

        for r in received:
            url = f"{BASE}{r.path}" + (f"?{r.query}" if r.query else "")
            payload = url + "".join(name + r.params[name] for name in sorted(r.params))
            digest = hmac.new(AUTH_TOKEN.encode(), payload.encode(), hashlib.sha1).digest()
            assert r.signature == base64.b64encode(digest).decode()

    async def test_only_the_requested_events_plus_the_final_one(
        self, rest: httpx.AsyncClient, fake: FakeTwilio, received: list[Received]
    ) -> None:
        call = await answered_call(rest, fake, StatusCallbackEvent=["answered"])
        await call.hang_up()

        assert at(received, "/voice/status") == ["in-progress", "completed"]
        assert at(received, "/voice/status", "SequenceNumber") == ["0", "1"]

    async def test_duplicate_sends_each_callback_twice(
        self, rest: httpx.AsyncClient, fake: FakeTwilio, received: list[Received]
    ) -> None:
        await create_call(rest)
        call = await fake.expect_call(to=STAFF, duplicate=True)

        await call.no_answer()

        statuses = [r for r in received if r.path == "/voice/status"]
        assert [r.params["SequenceNumber"] for r in statuses] == ["0", "0", "1", "1", "2", "2"]
        assert statuses[0].token == statuses[1].token != statuses[2].token
        assert statuses[-1].params["CallStatus"] == "no-answer"

    async def test_voicemail_posts_the_amd_result(
        self, rest: httpx.AsyncClient, fake: FakeTwilio, received: list[Received]
    ) -> None:
        await create_call(rest)
        call = await fake.expect_call(to=STAFF)

        await call.voicemail()

        assert at(received, "/voice/amd", "AnsweredBy") == ["machine_end_beep"]
        final = [r.params for r in received if r.path == "/voice/status"][-1]
        assert (final["CallStatus"], final["AnsweredBy"]) == ("completed", "machine_end_beep")

    async def test_a_human_answer_posts_human(
        self, rest: httpx.AsyncClient, fake: FakeTwilio, received: list[Received]
    ) -> None:
        call = await answered_call(rest, fake)
        await call.hang_up()

        assert at(received, "/voice/amd", "AnsweredBy") == ["human"]

    async def test_busy_shows_in_callbacks_and_on_get(
        self, rest: httpx.AsyncClient, fake: FakeTwilio, received: list[Received]
    ) -> None:
        await create_call(rest)
        call = await fake.expect_call(to=STAFF)

        await call.busy()

        assert at(received, "/voice/status") == ["initiated", "busy"]
        r = await rest.get(f"{PREFIX}/Calls/{call.sid}.json")
        assert r.json()["status"] == "busy"

    async def test_cancel_by_the_api_calls_back_later(
        self, rest: httpx.AsyncClient, fake: FakeTwilio, received: list[Received]
    ) -> None:
        sid = (await create_call(rest)).json()["sid"]
        call = await fake.expect_call(to=STAFF)

        r = await rest.post(f"{PREFIX}/Calls/{sid}.json", data={"Status": "canceled"})

        assert (r.status_code, r.json()["status"]) == (200, "canceled")
        assert at(received, "/voice/status") == []
        await fake.flush()
        assert at(received, "/voice/status") == ["canceled"]
        with pytest.raises(AssertionError, match="is canceled"):
            await call.answer()

    async def test_a_wrong_status_callback_answer_is_recorded(
        self, rest: httpx.AsyncClient, fake: FakeTwilio
    ) -> None:
        await create_call(rest, StatusCallback=f"{BASE}/voice/status-wrong")
        call = await fake.expect_call(to=STAFF)

        await call.no_answer()

        assert "answered 200 b'ok'" in take_errors(fake)

    async def test_a_wrong_token_is_caught_by_the_app(self, received: list[Received]) -> None:
        transport = httpx.ASGITransport(app=stand_in_app(received))
        fake = FakeTwilio(ACCOUNT_SID, "another-token", webhook_transport=transport)

        assert await fake.send_sms(from_=STAFF, body="1", to=OURS) == []

        assert "answered 403" in take_errors(fake)
        assert received == []


class TestParticipant:
    async def test_dial_the_customer_into_the_room(
        self, rest: httpx.AsyncClient, fake: FakeTwilio, received: list[Received]
    ) -> None:
        r = await rest.post(
            f"{PREFIX}/Conferences/sos-R1/Participants.json",
            data={
                "From": OURS,
                "To": CUSTOMER,
                "Timeout": "25",
                "StatusCallback": f"{BASE}/voice/status?report=R1",
                "StatusCallbackEvent": "initiated ringing answered completed",
                "EarlyMedia": "false",
            },
        )

        assert r.status_code == 201, r.text
        assert re.fullmatch(r"CF[0-9a-f]{32}", r.json()["conference_sid"])
        leg = await fake.expect_participant(to=CUSTOMER)
        assert (leg.sid, leg.conference) == (r.json()["call_sid"], "sos-R1")
        await leg.answer()
        await leg.hang_up()
        assert at(received, "/voice/status") == ["initiated", "ringing", "in-progress", "completed"]


class TestSms:
    async def test_create_then_deliver(
        self, rest: httpx.AsyncClient, fake: FakeTwilio, received: list[Received]
    ) -> None:
        r = await create_sms(rest)
        assert r.status_code == 201, r.text
        assert re.fullmatch(r"SM[0-9a-f]{32}", r.json()["sid"])
        assert r.json()["status"] == "queued"
        sms = await fake.expect_sms(to=STAFF)
        assert sms.body == "SOS fraud report 481: reply 1 to accept"

        await sms.deliver()

        assert at(received, "/sms/status", "MessageStatus") == ["sent", "delivered"]
        assert "ErrorCode" not in received[-1].params
        fetched = await rest.get(f"{PREFIX}/Messages/{sms.sid}.json")
        assert fetched.json()["status"] == "delivered"

    async def test_out_of_order_delivery(
        self, rest: httpx.AsyncClient, fake: FakeTwilio, received: list[Received]
    ) -> None:
        await create_sms(rest)
        sms = await fake.expect_sms(to=STAFF)

        await sms.deliver(out_of_order=True)

        assert at(received, "/sms/status", "MessageStatus") == ["delivered", "sent"]
        assert sms.status == "delivered"

    async def test_undelivered_carries_the_error_code(
        self, rest: httpx.AsyncClient, fake: FakeTwilio, received: list[Received]
    ) -> None:
        await create_sms(rest)
        sms = await fake.expect_sms(to=STAFF)

        await sms.undeliver()

        assert at(received, "/sms/status", "MessageStatus") == ["sent", "undelivered"]
        assert received[-1].params["ErrorCode"] == "30003"
        fetched = (await rest.get(f"{PREFIX}/Messages/{sms.sid}.json")).json()
        assert (fetched["status"], fetched["error_code"]) == ("undelivered", 30003)

    async def test_failed_was_never_sent(
        self, rest: httpx.AsyncClient, fake: FakeTwilio, received: list[Received]
    ) -> None:
        await create_sms(rest)
        sms = await fake.expect_sms(to=STAFF, duplicate=True)

        await sms.fail()

        assert at(received, "/sms/status", "MessageStatus") == ["failed", "failed"]
        assert received[-1].params["ErrorCode"] == "30008"

    async def test_an_inbound_reply_is_parsed(
        self, fake: FakeTwilio, received: list[Received]
    ) -> None:
        assert await fake.send_sms(from_=STAFF, body="1", to=OURS) == ["ok"]
        assert await fake.send_sms(from_=STAFF, body="quiet", to=OURS) == []

        params = received[0].params
        assert re.fullmatch(r"SM[0-9a-f]{32}", params["MessageSid"])
        assert (params["From"], params["To"], params["Body"]) == (STAFF, OURS, "1")
        assert (params["SmsStatus"], params["NumMedia"]) == ("received", "0")

    async def test_stop_blocks_the_pair_until_start(
        self, rest: httpx.AsyncClient, fake: FakeTwilio
    ) -> None:
        await fake.send_sms(from_=STAFF, body="STOP", to=OURS)
        blocked = await create_sms(rest)
        await fake.send_sms(from_=STAFF, body="START", to=OURS)
        allowed = await create_sms(rest)

        assert (blocked.status_code, blocked.json()["code"]) == (400, 21610)
        assert allowed.status_code == 201
        await fake.expect_sms(to=STAFF)


class TestIncomingCall:
    async def test_the_sos_line_menu(self, fake: FakeTwilio, received: list[Received]) -> None:
        call = await fake.incoming_call(from_=CUSTOMER, to=OURS)

        assert call.heard == ["Press 1"]
        assert received[0].params["Direction"] == "inbound"
        assert received[0].params["CallStatus"] == "ringing"
        await call.press("1")
        assert call.heard == ["Press 1", "Thanks"]


# --- the oracle -------------------------------------------------------------------------------


class TestAssertClean:
    async def test_an_unexpected_call_fails(
        self, rest: httpx.AsyncClient, fake: FakeTwilio
    ) -> None:
        await create_call(rest)

        with pytest.raises(
            AssertionError, match=rf"unexpected <FakeCall call CA\w+ to {re.escape(STAFF)}>"
        ):
            fake.assert_clean()
        await fake.expect_call(to=STAFF)  # teardown stays clean

    async def test_expecting_a_call_that_never_came_fails(self, fake: FakeTwilio) -> None:
        with pytest.raises(AssertionError, match=f"expected a call to {re.escape(STAFF)}"):
            await fake.expect_call(to=STAFF)
