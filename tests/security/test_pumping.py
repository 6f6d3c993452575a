"""SMS and call pumping (reliability.md §3.4, test table row 33): customer texts and calls go
only to allowed countries and ordinary phone numbers, and per-number, per-prefix and global
velocity limits trip breakers that stop them (never staff paging) and alert the operators.

Through the real Twilio adapter against the fake Twilio, which fails the test on any call or SMS
nobody expected: a blocked send must never reach it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from app.settings import OperatorsSettings, PagingSettings, PumpingSettings, Settings
from routing.notify import outbox
from routing.notify.models import OutboundMessage
from routing.pumping import rules
from tests.harness import types
from tests.scenarios.twilio_harness import ANNA, SOS_NUMBER, Twilio, tw

__all__ = ["tw"]

OPERATORS = "+31611112222"
PREMIUM, US, UK = "+31900123456", "+14155552671", "+447400123456"
PER_NUMBER, PER_PREFIX, PER_ALL = 3, 4, 6
COOLDOWN = 1800


@pytest.fixture
def settings(migrated: str) -> Settings:
    return Settings(
        database_url=migrated,
        sla_seconds=600,
        seed_demo=False,
        operators=OperatorsSettings(phone=OPERATORS, language="en"),
        paging=PagingSettings(max_sms_per_window=100),  # page Anna as often as it takes
        pumping=PumpingSettings(
            per_number=PER_NUMBER,
            per_prefix=PER_PREFIX,
            per_all=PER_ALL,
            window_seconds=3600,
            cooldown_seconds=COOLDOWN,
        ),
    )


async def accepted_by_anna(t: Twilio, phone: str, *, paged: bool = False) -> dict[str, Any]:
    """A report from `phone` (`paged`: and Anna's page for it), accepted by Anna through the
    API: the "Anna calls you now" SMS to the customer is queued and the engine has run."""
    report = await t.h.report(callback_phone=phone)
    if paged:
        await t.h.tick()
        page = await t.fake.expect_sms(to=ANNA)
        assert str(report["reference"]) in page.body
    assert (await t.h.ack(str(report["id"]), "Anna")).status_code == 200
    await t.h.tick()
    return report


async def blocks(t: Twilio, report: dict[str, Any]) -> list[dict[str, Any]]:
    seen = await t.h.get(str(report["id"]))
    return [e for e in seen["timeline"] if e["type"] == "send_blocked"]


async def open_in_metrics(t: Twilio) -> dict[str, float]:
    """`sos_pumping_breakers_open` of a scrape of `/metrics`, by scope."""
    r = await t.h.client.get("/metrics")
    assert r.status_code == 200, r.text
    assert "+3168765" not in r.text  # a scope, never a number
    return {
        s.labels["scope"]: s.value
        for family in text_string_to_metric_families(r.text)
        if family.name == "sos_pumping_breakers_open"
        for s in family.samples
    }


async def pumping_check(t: Twilio) -> dict[str, Any]:
    """`checks.pumping` of `/readyz`, which open breakers never fail."""
    r = await t.h.client.get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json()["failed"] == []
    assert "+3168765" not in r.text
    check: dict[str, Any] = r.json()["checks"]["pumping"]
    assert check["ok"] is True
    return check


async def admin_blocks(t: Twilio) -> dict[str, Any]:
    r = await t.h.client.get("/v1/admin/blocks", headers=t.h.admin)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_a_premium_rate_number_is_never_called(tw: Twilio) -> None:
    await tw.h.staff("Anna", ANNA)
    await tw.h.chain(("sms", ["Anna"], 60))
    report = await tw.h.report(callback_phone="0900 123456")  # a valid Dutch premium number
    await tw.h.tick()
    await (await tw.fake.expect_sms(to=ANNA)).deliver()

    await tw.fake.send_sms(from_=ANNA, body="1", to=SOS_NUMBER)  # accepted: bridge both of them
    await tw.h.tick()

    await tw.fake.expect_participant(to=ANNA)  # Anna is called; the premium number is not
    assert tw.fake.calls_to(PREMIUM) == []
    [block] = await blocks(tw, report)
    assert block["data"]["reason"] == "number_type"
    assert "premium-rate" in block["detail"]
    assert block["data"]["to"] == "+31*******56"
    assert "bridge_failed" in types(await tw.h.get(str(report["id"])))


async def test_a_text_queued_to_a_premium_number_fails_before_any_provider(tw: Twilio) -> None:
    report = await tw.h.report()
    async with tw.h.container.db.begin() as session:
        await outbox.queue(
            session,
            kind="receipt",
            channel="sms",
            to=PREMIUM,
            language="nl",
            body="SOS report received.",
            now=tw.h.clock.now(),
            report_id=str(report["id"]),
        )
    await tw.h.tick()

    async with tw.h.container.db() as session:
        message = await session.scalar(select(OutboundMessage))
    assert message is not None
    assert (message.state, message.error) == ("failed", "blocked: number_type")
    assert [b["data"]["reason"] for b in await blocks(tw, report)] == ["number_type"]


@pytest.mark.parametrize(("phone", "region"), [(US, "US"), (UK, "GB")])
async def test_numbers_outside_the_allowed_countries_get_no_texts(
    tw: Twilio, phone: str, region: str
) -> None:
    await tw.h.staff("Anna", ANNA)
    report = await accepted_by_anna(
        tw, phone
    )  # the accepted SMS is blocked: nothing reaches Twilio

    [block] = await blocks(tw, report)
    assert block["data"]["reason"] == "country"
    assert f"a number in {region}" in block["detail"]


async def test_a_foreign_sender_gets_no_receipt_and_no_reply(tw: Twilio) -> None:
    await tw.h.staff("Anna", ANNA)
    assert await tw.fake.send_sms(from_=US, body="help, my account", to=SOS_NUMBER) == []
    await tw.h.tick()  # the receipt SMS is blocked

    replies = await tw.fake.send_sms(from_=US, body="still there?", to=SOS_NUMBER)

    assert replies == []  # the "message added" reply is blocked too
    found = (await admin_blocks(tw))["blocks"]
    assert [b["reason"] for b in found] == ["country", "country"]
    assert {b["to"] for b in found} == {"+14*******71"}


async def test_sequential_numbers_trip_the_prefix_breaker(tw: Twilio) -> None:
    await tw.h.staff("Anna", ANNA)
    neighbours = [f"+3161234000{n}" for n in range(PER_PREFIX + 2)]
    for phone in neighbours[:PER_PREFIX]:
        await accepted_by_anna(tw, phone)
        await tw.fake.expect_sms(to=phone)

    tripped = await accepted_by_anna(tw, neighbours[PER_PREFIX])

    [block] = await blocks(tw, tripped)
    assert block["data"]["reason"] == "prefix_breaker"
    alert = await tw.fake.expect_sms(to=OPERATORS)
    assert "one number range stopped" in alert.body
    assert "Staff paging continues" in alert.body
    [breaker] = (await admin_blocks(tw))["breakers"]
    assert (breaker["scope"], breaker["label"]) == ("prefix", "+3161234XXXX")

    # The range stays closed (no second alert); other ranges are not affected.
    await accepted_by_anna(tw, neighbours[PER_PREFIX + 1])
    elsewhere = await accepted_by_anna(tw, "+31687654321")
    await tw.fake.expect_sms(to=str(elsewhere["callback_phone"]))

    # After the cool-down the range is open again.
    await tw.h.advance(COOLDOWN)
    await accepted_by_anna(tw, "+31612349999")
    await tw.fake.expect_sms(to="+31612349999")


async def trip_the_number_breaker(t: Twilio) -> dict[str, Any]:
    """A customer asks for a callback again and again: each confirmation SMS counts against
    their number, and the one past the limit opens its breaker. Returns the report."""
    report = await t.h.report(callback_phone="+31687654321")
    path = f"/v1/reports/{report['id']}/callback"
    for n in range(PER_NUMBER + 1):
        at = (t.h.clock.now() + timedelta(hours=1 + n)).isoformat()
        r = await t.h.client.post(path, json={"at": at}, headers=t.h.app)
        assert r.status_code == 200, r.text
        await t.h.tick()
        if n < PER_NUMBER:
            await t.fake.expect_sms(to="+31687654321")  # "we will call you at ..."
    assert "one customer number" in (await t.fake.expect_sms(to=OPERATORS)).body
    return report


async def test_one_number_texted_too_often_trips_its_breaker(tw: Twilio) -> None:
    report = await trip_the_number_breaker(tw)

    assert [b["data"]["reason"] for b in await blocks(tw, report)] == ["number_breaker"]


async def test_the_global_breaker_stops_customer_texts_but_never_staff_paging(
    tw: Twilio,
) -> None:
    await tw.h.staff("Anna", ANNA)
    await tw.h.chain(("sms", ["Anna"], 600))
    customers = [f"+316{10 + n}000001" for n in range(PER_ALL + 2)]  # one per range
    for phone in customers[:PER_ALL]:
        await accepted_by_anna(tw, phone, paged=True)
        await tw.fake.expect_sms(to=phone)

    tripped = await accepted_by_anna(tw, customers[PER_ALL], paged=True)
    assert [b["data"]["reason"] for b in await blocks(tw, tripped)] == ["global_breaker"]
    assert "all customers stopped" in (await tw.fake.expect_sms(to=OPERATORS)).body

    # While it is open: a new report still pages Anna; its customer gets nothing.
    waiting = await tw.h.report(callback_phone=customers[PER_ALL + 1])
    await tw.h.tick()
    page = await tw.fake.expect_sms(to=ANNA)
    assert str(waiting["reference"]) in page.body

    # An admin resets it: customer texts flow again at once.
    [breaker] = (await admin_blocks(tw))["breakers"]
    r = await tw.h.client.post(
        f"/v1/admin/blocks/breakers/{breaker['id']}/reset", headers=tw.h.admin
    )
    assert r.status_code == 200, r.text
    assert r.json()["closed_at"] is not None
    assert (await admin_blocks(tw))["breakers"] == []
    assert (await tw.h.ack(str(waiting["id"]), "Anna")).status_code == 200
    await tw.h.tick()
    await tw.fake.expect_sms(to=customers[PER_ALL + 1])


async def test_open_breakers_show_in_readyz_and_metrics_and_never_fail_readiness(
    tw: Twilio,
) -> None:
    tw.h.container.metrics.database.cache_seconds = 0  # every scrape reads the database
    closed = {"global": 0, "prefix": 0, "number": 0}
    assert await open_in_metrics(tw) == closed
    assert (await pumping_check(tw))["breakers_open"] == 0

    await trip_the_number_breaker(tw)

    tripped = await pumping_check(tw)  # customer texts stop; paging staff does not
    assert tripped["breakers_open"] == 1
    assert tripped["by_scope"] == {**closed, "number": 1}
    assert "staff paging goes on" in tripped["detail"]
    assert await open_in_metrics(tw) == {**closed, "number": 1}

    [breaker] = (await admin_blocks(tw))["breakers"]
    r = await tw.h.client.post(
        f"/v1/admin/blocks/breakers/{breaker['id']}/reset", headers=tw.h.admin
    )
    assert r.status_code == 200, r.text

    reset = await pumping_check(tw)
    assert (reset["breakers_open"], reset["detail"]) == (0, "no breaker open")
    assert await open_in_metrics(tw) == closed


async def test_a_breaker_leaves_readyz_and_metrics_when_its_cooldown_ends(tw: Twilio) -> None:
    tw.h.container.metrics.database.cache_seconds = 0
    await trip_the_number_breaker(tw)
    tw.h.clock.advance(COOLDOWN - 1)
    assert (await pumping_check(tw))["breakers_open"] == 1
    assert (await open_in_metrics(tw))["number"] == 1

    tw.h.clock.advance(1)

    assert (await pumping_check(tw))["breakers_open"] == 0
    assert (await open_in_metrics(tw))["number"] == 0


async def test_only_admins_see_and_reset_blocks(tw: Twilio) -> None:
    await tw.h.staff("Anna", ANNA)
    report = await accepted_by_anna(tw, US)
    staff = tw.h.as_staff("Anna")
    for headers, status in ((staff, 403), (tw.h.app, 403), ({}, 401)):
        r = await tw.h.client.get("/v1/admin/blocks", headers=headers)
        assert r.status_code == status, r.text
        r = await tw.h.client.post("/v1/admin/blocks/breakers/1/reset", headers=headers)
        assert r.status_code == status, r.text
    r = await tw.h.client.post("/v1/admin/blocks/breakers/999/reset", headers=tw.h.admin)
    assert r.status_code == 404
    assert r.json()["error"]["field"] == "breaker_id"

    [block] = (await admin_blocks(tw))["blocks"]
    assert block["report_id"] == report["id"]
    assert block["reason"] == "country"
    assert US not in str(block)


# --- the pure rules ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "channel", "reason"),
    [
        ("+31612345678", "sms", None),  # mobile
        ("+31612345678", "voice", None),
        ("+31201234567", "voice", None),  # a landline can be called back
        ("+31201234567", "sms", rules.NUMBER_TYPE),  # but not texted
        ("+31850123456", "voice", None),  # VoIP
        ("+31900123456", "voice", rules.NUMBER_TYPE),  # premium rate
        ("+31906123456", "voice", rules.NUMBER_TYPE),
        ("+31909123456", "sms", rules.NUMBER_TYPE),
        ("+31880123456", "voice", rules.NUMBER_TYPE),  # UAN
        ("+31871234567", "voice", rules.NUMBER_TYPE),
        ("+31800123456", "voice", rules.NUMBER_TYPE),  # toll-free
        ("+32470123456", "sms", None),  # Belgium: EU
        ("+4915123456789", "sms", None),  # Germany: EU
        ("+4791234567", "sms", None),  # Norway: EEA
        (US, "sms", rules.COUNTRY),
        (UK, "sms", rules.COUNTRY),
        ("+2693012345", "voice", rules.COUNTRY),  # Comoros: a classic pumping destination
        ("+3166123456", "sms", rules.INVALID),
        ("anonymous", "voice", rules.INVALID),
    ],
)
def test_what_may_be_sent_where(number: str, channel: str, reason: str | None) -> None:
    block = rules.screen(number, channel=channel, regions=rules.EU_EEA)
    assert (block.reason if block else None) == reason
    if block is not None:
        assert number not in block.detail


def test_allowed_countries_are_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOS_PUMPING__ALLOWED_REGIONS", '["nl", "GB"]')
    regions = frozenset(Settings().pumping.allowed_regions)
    assert regions == {"NL", "GB"}
    assert rules.screen(UK, channel="sms", regions=regions) is None
    assert rules.screen("+32470123456", channel="sms", regions=regions) is not None
    with pytest.raises(ValueError, match="unknown region codes: XX"):
        PumpingSettings(allowed_regions=["NL", "XX"])
