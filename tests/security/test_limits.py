"""Abuse limits on requests (test table rows 26 and 27): bodies over the limit get 413 before
anything parses them, and clients over a rate limit (per address, per token, per phone number)
get 429 with `Retry-After` and create nothing."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from app.container import Container
from app.limits import Buckets
from app.main import create_app
from app.settings import LimitsSettings, Settings
from routing.inbound.models import SosCall
from routing.report.models import Report
from tests.harness import Harness
from tests.providers.test_vonage_webhooks import OURS, Vonage, vn
from tests.scenarios.twilio_harness import CUSTOMER, SOS_NUMBER, Twilio, tw

__all__ = ["tw", "vn"]

OUTSIDER = "203.0.113.7"
KIB = 1024
REPORT = {"category": "fraud", "callback_phone": "06 12345678"}
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def limits() -> LimitsSettings:
    return LimitsSettings()


@pytest.fixture
def settings(migrated: str, limits: LimitsSettings) -> Settings:
    return Settings(database_url=migrated, sla_seconds=600, seed_demo=False, limits=limits)


@pytest.fixture
def app(container: Container) -> FastAPI:
    return create_app(container, run_engine=False)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The harness's client, on loopback (exempt from the address limit by default)."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://sos.test") as c:
        yield c


def from_address(app: FastAPI, address: str = OUTSIDER) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://sos.test")


def assert_limited(r: httpx.Response, field: str | None = None) -> int:
    """A 429 in the error format with a whole number of seconds in `Retry-After`."""
    assert r.status_code == 429, r.text
    wait = int(r.headers["Retry-After"])
    assert wait >= 1
    error = r.json()["error"]
    assert error["code"] == "rate_limited"
    assert error["field"] == field
    return wait


async def reports(h: Harness) -> int:
    return await h.count(Report)


# --- body size -----------------------------------------------------------------------------------


async def chunks(body: bytes, size: int, pulled: list[int]) -> AsyncIterator[bytes]:
    """`body` in chunks of `size`, without a Content-Length (chunked); counts what was read."""
    for start in range(0, len(body), size):
        pulled.append(size)
        yield body[start : start + size]


class TestBodySize:
    async def test_a_1_mb_report_gets_413_before_anything_reads_it(self, h: Harness) -> None:
        body = json.dumps({**REPORT, "description": "x" * 1_000_000})
        for headers in (h.app, {}):  # even before authentication
            r = await h.client.post("/v1/reports", content=body, headers={**headers, **JSON})
            assert r.status_code == 413, r.text
            assert r.json()["error"] == {
                "code": "payload_too_large",
                "message": "the body is larger than 65536 bytes",
                "field": "body",
            }
        assert await reports(h) == 0

    async def test_a_chunked_body_is_cut_off_at_the_limit(self, h: Harness) -> None:
        body = json.dumps({**REPORT, "description": "x" * 1_000_000}).encode()
        pulled: list[int] = []
        r = await h.client.post(
            "/v1/reports", content=chunks(body, 16 * KIB, pulled), headers={**h.app, **JSON}
        )
        assert "content-length" not in r.request.headers
        assert r.status_code == 413, r.text
        assert sum(pulled) <= 64 * KIB + 16 * KIB  # read up to the limit, never the megabyte
        assert await reports(h) == 0

    async def test_a_chunked_body_within_the_limit_is_taken(self, h: Harness) -> None:
        body = json.dumps(REPORT).encode()
        r = await h.client.post(
            "/v1/reports", content=chunks(body, 7, []), headers={**h.app, **JSON}
        )
        assert r.status_code == 201, r.text

    async def test_deeply_nested_json_within_the_limit_is_a_clean_4xx(self, h: Harness) -> None:
        body = "[" * 30_000 + "]" * 30_000
        r = await h.client.post("/v1/reports", content=body, headers={**h.app, **JSON})
        assert 400 <= r.status_code < 500, r.text
        assert r.json()["error"]["code"]
        assert await reports(h) == 0

    async def test_webhooks_have_their_own_bound(self, h: Harness) -> None:
        form = "Body=" + "x" * (100 * KIB)  # over the API's limit, within the webhooks'
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        r = await h.client.post("/webhooks/twilio/sms", content=form, headers=headers)
        assert r.status_code == 404  # read on: Twilio is not configured here
        r = await h.client.post("/webhooks/twilio/sms", content=form * 3, headers=headers)
        assert r.status_code == 413


class TestManyFields:
    @pytest.fixture
    def limits(self) -> LimitsSettings:
        return LimitsSettings(max_body_bytes=256 * KIB)

    async def test_10000_fields_within_the_limit_are_a_clean_422(self, h: Harness) -> None:
        body = json.dumps({**REPORT, **{f"f{n}": 0 for n in range(10_000)}})
        assert len(body) < 256 * KIB
        r = await h.client.post("/v1/reports", content=body, headers={**h.app, **JSON})
        assert r.status_code == 422, r.text
        error = r.json()["error"]
        assert (error["code"], error["field"]) == ("validation_error", "f0")
        assert len(error["details"]) == 20  # the first few, not an answer larger than the body
        assert await reports(h) == 0


# --- rates ---------------------------------------------------------------------------------------


class TestPerAddress:
    @pytest.fixture
    def limits(self) -> LimitsSettings:
        return LimitsSettings(per_address=5)

    async def test_an_address_over_its_limit_waits_and_creates_nothing(
        self, h: Harness, app: FastAPI
    ) -> None:
        async with from_address(app) as outsider:
            for _ in range(5):
                r = await outsider.post("/v1/reports", json=REPORT, headers=h.app)
                assert r.status_code in (200, 201), r.text
            r = await outsider.post(
                "/v1/reports", json={**REPORT, "callback_phone": "0687654321"}, headers=h.app
            )
            wait = assert_limited(r)
            assert wait == 12  # a token every 60 s / 5
            assert await reports(h) == 1  # the first; the next four joined it; not the sixth

            h.clock.advance(wait)
            r = await outsider.get("/healthz")
            assert r.status_code == 200

    async def test_loopback_is_exempt_by_default(self, h: Harness) -> None:
        for _ in range(20):
            assert (await h.client.get("/healthz")).status_code == 200

    async def test_x_forwarded_for_is_not_trusted_by_default(self, app: FastAPI) -> None:
        async with from_address(app) as outsider:
            answers = [
                (await outsider.get("/healthz", headers={"X-Forwarded-For": f"198.51.100.{n}"}))
                for n in range(6)
            ]
        assert [r.status_code for r in answers] == [200] * 5 + [429]

    async def test_webhooks_are_not_counted_per_address(self, app: FastAPI) -> None:
        async with from_address(app) as provider:
            for _ in range(10):
                r = await provider.post("/webhooks/twilio/sms", content="Body=x")
                assert r.status_code == 404  # Twilio is not configured here; never 429


class TestBehindAProxy:
    @pytest.fixture
    def limits(self) -> LimitsSettings:
        return LimitsSettings(per_address=2, trusted_proxies=["10.0.0.0/24"])

    async def test_the_client_is_the_nearest_untrusted_forwarded_address(
        self, app: FastAPI
    ) -> None:
        async with from_address(app, "10.0.0.5") as proxy:

            async def status(forwarded: str) -> int:
                r = await proxy.get("/healthz", headers={"X-Forwarded-For": forwarded})
                return r.status_code

            assert await status("198.51.100.1") == 200
            # A client cannot escape by writing its own entry at the far end.
            assert await status("6.6.6.6, 198.51.100.1") == 200
            assert await status("7.7.7.7, 198.51.100.1, 10.0.0.9") == 429
            assert await status("198.51.100.2") == 200  # another client behind the proxy
            # What is not an address is not a client: the proxy itself is counted.
            assert [await status("nonsense") for _ in range(3)] == [200, 200, 429]


class TestPerToken:
    @pytest.fixture
    def limits(self) -> LimitsSettings:
        return LimitsSettings(per_token=3)

    async def test_a_token_over_its_limit_waits(self, h: Harness) -> None:
        for _ in range(3):
            r = await h.client.get("/v1/reports/nope", headers=h.app)
            assert r.status_code == 404
        r = await h.client.get("/v1/reports/nope", headers=h.app)
        assert_limited(r)
        assert "token" in r.json()["error"]["message"]
        r = await h.client.get("/v1/reports/nope", headers=h.admin)  # another token
        assert r.status_code == 404


class TestPerPhone:
    @pytest.fixture
    def limits(self) -> LimitsSettings:
        return LimitsSettings(per_phone=3, phone_window_seconds=3600)

    async def test_a_phone_that_reports_too_often_waits_and_creates_nothing(
        self, h: Harness
    ) -> None:
        first = await h.client.post("/v1/reports", json=REPORT, headers=h.app)
        assert first.status_code == 201
        for _ in range(2):
            again = await h.client.post("/v1/reports", json=REPORT, headers=h.app)
            assert again.status_code == 200  # joined the open case
        report_id = first.json()["id"]

        r = await h.client.post("/v1/reports", json=REPORT, headers=h.app)

        wait = assert_limited(r, "callback_phone")
        assert wait == 1200  # a report every 3600 s / 3
        assert (await h.get(report_id))["contacts"] == 3  # the limited one did not join
        other = await h.client.post(
            "/v1/reports", json={**REPORT, "callback_phone": "06 87654321"}, headers=h.app
        )
        assert other.status_code == 201
        h.clock.advance(wait)
        assert (await h.client.post("/v1/reports", json=REPORT, headers=h.app)).status_code == 200


class TestPhoneOnTheSosNumber:
    @pytest.fixture
    def limits(self) -> LimitsSettings:
        return LimitsSettings(per_phone=2)

    async def test_a_customer_texting_too_often_is_turned_away(self, tw: Twilio) -> None:
        assert await tw.fake.send_sms(from_=CUSTOMER, body="help", to=SOS_NUMBER) == []
        await tw.h.tick()
        await tw.fake.expect_sms(to=CUSTOMER)  # the receipt
        [added] = await tw.fake.send_sms(from_=CUSTOMER, body="more", to=SOS_NUMBER)
        assert "toegevoegd" in added

        assert await tw.fake.send_sms(from_=CUSTOMER, body="spam", to=SOS_NUMBER) == []

        assert tw.fake.errors == [
            "TwiML webhook https://sos.example.test/webhooks/twilio/sms answered 429 "
            "'application/json'"
        ]
        tw.fake.errors.clear()
        (description,) = await _descriptions(tw)
        assert description == "help\nmore"

    async def test_a_customer_texting_our_vonage_number_too_often_is_turned_away(
        self, vn: Vonage
    ) -> None:
        for text in ("help", "more"):
            assert (await vn.fake.send_sms(from_=CUSTOMER, text=text, to=OURS)).status_code == 204
            await vn.h.tick()
            await vn.fake.expect_sms(to=CUSTOMER)  # the receipt, then "added to your report"

        r = await vn.fake.send_sms(from_=CUSTOMER, text="spam", to=OURS)

        assert_limited(r, "callback_phone")
        assert vn.fake.errors == ["inbound SMS webhook answered 429"]
        vn.fake.errors.clear()
        await vn.h.tick()  # no reply to the limited text

    async def test_a_caller_calling_too_often_is_turned_away(self, tw: Twilio) -> None:
        def call(n: int) -> dict[str, str]:
            return {"CallSid": f"CA{n:032d}", "From": CUSTOMER, "To": SOS_NUMBER}

        for n in range(2):
            r = await tw.signed_post("/webhooks/twilio/voice", call(n))
            assert r.status_code == 200, r.text
        r = await tw.signed_post("/webhooks/twilio/voice", call(2))
        assert_limited(r, "callback_phone")
        async with tw.h.container.db() as session:
            calls = list(await session.scalars(select(SosCall.call_sid)))
        assert sorted(calls) == [call(0)["CallSid"], call(1)["CallSid"]]


async def _descriptions(t: Twilio) -> list[str | None]:
    async with t.h.container.db() as session:
        return list(await session.scalars(select(Report.description)))


# --- the buckets ---------------------------------------------------------------------------------


def test_buckets_refill_and_stay_bounded() -> None:
    buckets = Buckets(2, 60, max_keys=3)
    assert [buckets.take(b"a", 0) for _ in range(3)] == [0, 0, 30]
    assert buckets.take(b"a", 29) == 1
    assert buckets.take(b"a", 30) == 0
    for n in range(10):
        buckets.take(bytes([n]), 31)
    assert len(buckets._buckets) == 3  # a flood of new clients does not grow memory


def test_limits_settings_refuse_what_is_not_an_address() -> None:
    with pytest.raises(ValueError, match=r"'proxy\.example' is not an IP address or network"):
        LimitsSettings(trusted_proxies=["proxy.example"])
