"""`POST /v1/reports`: what an app may send, what it gets back, and what a 201 promises."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from routing.audit.models import AuditEvent
from routing.page.models import EscalationTimer, Page
from routing.report.models import Report
from routing.types import Role
from tests.harness import VOICE, Harness

BODY: dict[str, Any] = {"category": "fraud", "callback_phone": "06 12345678"}


def customer(n: int) -> dict[str, Any]:
    """A report body from the n-th of several different customers (one customer's reports join
    one case)."""
    return {**BODY, "callback_phone": f"06 1234{n:04d}"}


async def post(
    h: Harness,
    body: dict[str, Any],
    *,
    key: str | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    sent = dict(headers if headers is not None else h.app)
    if key is not None:
        sent["Idempotency-Key"] = key
    return await h.client.post("/v1/reports", json=body, headers=sent)


def assert_error(r: httpx.Response, status: int, field: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    error: dict[str, Any] = r.json()["error"]
    assert isinstance(error["code"], str)
    assert error["code"]
    assert isinstance(error["message"], str)
    assert error["message"]
    assert "field" in error
    if field is not None:
        assert error["field"] == field, error
    return error


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


class TestAccepted:
    async def test_minimal_report_is_open_with_defaults_and_a_ten_minute_deadline(
        self, h: Harness
    ) -> None:
        r = await post(h, BODY)

        assert r.status_code == 201, r.text
        report = r.json()
        assert report["status"] == "open"
        assert report["category"] == "fraud"
        assert report["language"] == "nl"
        assert report["channel"] == "app"
        assert report["callback_phone"] == "+31612345678"
        assert report["customer_ref"] is None
        assert report["description"] is None
        assert report["acknowledged_at"] is None
        assert report["acknowledged_by"] is None
        assert report["sla"] == {"met": None, "time_to_ack_seconds": None}
        assert at(report["received_at"]) == h.clock.now()
        assert at(report["deadline_at"]) - at(report["received_at"]) == timedelta(seconds=600)

    async def test_every_optional_field_is_kept(self, h: Harness) -> None:
        body = {
            **BODY,
            "category": "account_takeover",
            "language": "en",
            "customer_ref": "C" * 64,
            "description": "d" * 2000,
            "channel": "web",
        }
        created = (await post(h, body)).json()

        seen = await h.get(created["id"])
        assert seen["category"] == "account_takeover"
        assert seen["language"] == "en"
        assert seen["customer_ref"] == "C" * 64
        assert seen["description"] == "d" * 2000
        assert seen["channel"] == "web"

    @pytest.mark.parametrize("category", ["fraud", "account_takeover", "lost_card", "other"])
    async def test_every_category_is_accepted(self, h: Harness, category: str) -> None:
        r = await post(h, {**BODY, "category": category})
        assert r.status_code == 201, r.text
        assert r.json()["category"] == category

    @pytest.mark.parametrize(
        "phone",
        ["06 12345678", "0612345678", "06-12345678", "+31 6 1234 5678", "+31612345678"],
    )
    async def test_callback_phone_is_normalised_to_e164(self, h: Harness, phone: str) -> None:
        r = await post(h, {**BODY, "callback_phone": phone})
        assert r.status_code == 201, r.text
        assert r.json()["callback_phone"] == "+31612345678"
        assert (await h.get(r.json()["id"]))["callback_phone"] == "+31612345678"

    async def test_reference_is_a_short_readable_code_unique_per_report(self, h: Harness) -> None:
        reports = [(await post(h, customer(n))).json() for n in range(5)]

        references = [r["reference"] for r in reports]
        assert len(set(references)) == 5
        assert len({r["id"] for r in reports}) == 5
        for reference in references:
            assert re.fullmatch(r"[A-Z0-9]{4,12}", reference), reference

    async def test_times_come_from_the_server_clock(self, h: Harness) -> None:
        first = (await post(h, customer(1))).json()
        h.clock.advance(90)
        second = (await post(h, customer(2))).json()

        assert at(second["received_at"]) - at(first["received_at"]) == timedelta(seconds=90)
        assert at(second["deadline_at"]) == h.clock.now() + timedelta(seconds=600)


class TestRejected:
    async def test_unknown_field_is_named(self, h: Harness) -> None:
        r = await post(h, {**BODY, "priority": "high"})
        error = assert_error(r, 422, "priority")
        assert "priority" in error["message"]
        assert await h.count(Report) == 0

    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("received_at", "2020-01-01T00:00:00Z"),
            ("deadline_at", "2099-01-01T00:00:00Z"),
            ("acknowledged_at", "2026-01-05T09:00:00Z"),
            ("status", "acknowledged"),
            ("id", "00000000-0000-0000-0000-000000000000"),
            ("reference", "ABCDEF"),
        ],
    )
    async def test_client_cannot_set_server_owned_fields(
        self, h: Harness, name: str, value: str
    ) -> None:
        r = await post(h, {**BODY, name: value})
        assert_error(r, 422, name)
        assert await h.count(Report) == 0

    @pytest.mark.parametrize(
        "phone", ["12", "not a phone", "+31 6 1234", "06 1234567890123", "", "+999 123"]
    )
    async def test_invalid_callback_phone_is_rejected(self, h: Harness, phone: str) -> None:
        r = await post(h, {**BODY, "callback_phone": phone})
        assert_error(r, 422, "callback_phone")
        assert await h.count(Report) == 0

    async def test_callback_phone_must_be_a_string(self, h: Harness) -> None:
        assert_error(await post(h, {**BODY, "callback_phone": 612345678}), 422, "callback_phone")

    @pytest.mark.parametrize("missing", ["category", "callback_phone"])
    async def test_required_fields_are_named_when_missing(self, h: Harness, missing: str) -> None:
        body = {k: v for k, v in BODY.items() if k != missing}
        assert_error(await post(h, body), 422, missing)

    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("category", "theft"),
            ("category", "FRAUD"),
            ("category", None),
            ("language", "de"),
            ("language", None),
            ("channel", "phone"),
            ("channel", "sms"),
            ("customer_ref", "x" * 65),
            ("customer_ref", 12),
            ("description", "x" * 2001),
            ("description", ["a"]),
        ],
    )
    async def test_out_of_contract_values_are_rejected_naming_the_field(
        self, h: Harness, name: str, value: object
    ) -> None:
        r = await post(h, {**BODY, name: value})
        assert_error(r, 422, name)
        assert await h.count(Report) == 0

    @pytest.mark.parametrize("body", [[], "fraud", 42, None])
    async def test_body_must_be_an_object(self, h: Harness, body: object) -> None:
        r = await h.client.post("/v1/reports", json=body, headers=h.app)
        assert_error(r, 422)
        assert await h.count(Report) == 0


class TestWhoMayReport:
    async def test_no_token_is_401(self, h: Harness) -> None:
        r = await post(h, BODY, headers={})
        assert_error(r, 401)
        assert r.headers["www-authenticate"] == "Bearer"

    @pytest.mark.parametrize("role", [Role.ADMIN, Role.STAFF])
    async def test_only_app_tokens_may_report(self, h: Harness, role: Role) -> None:
        staff_id = await h.staff("Anna") if role == Role.STAFF else None
        r = await post(h, BODY, headers=await h.token(role, staff_id))
        assert_error(r, 403)
        assert await h.count(Report) == 0


class TestDurable:
    async def test_201_means_report_timers_and_audit_are_stored(self, h: Harness) -> None:
        """Intake stores the report, its deadline and a first-step timer due at once, in one
        transaction; the engine pages step 1 from that timer (so intake stays a few inserts)."""
        await h.staff("Anna")
        await h.staff("Bram")
        await h.chain(("voice", ["Anna", "Bram"], 30), ("sms", ["Bram"], 60))

        r = await post(h, BODY)

        assert r.status_code == 201
        report_id = r.json()["id"]
        assert await h.count(Report, Report.id == report_id) == 1
        timers = EscalationTimer.report_id == report_id
        assert await h.count(EscalationTimer, timers, EscalationTimer.kind == "deadline") == 1
        first = (timers, EscalationTimer.kind == "first", EscalationTimer.due_at <= h.clock.now())
        assert await h.count(EscalationTimer, *first) == 1
        received = (AuditEvent.report_id == report_id, AuditEvent.type == "received")
        assert await h.count(AuditEvent, *received) == 1
        assert [e["type"] for e in r.json()["timeline"]] == ["received"]

        await h.tick()  # no time passes: step 1 is paged at once
        h.expect(("Anna", VOICE), ("Bram", VOICE))
        assert await h.count(Page, Page.report_id == report_id) == 2
        assert await h.count(EscalationTimer, timers, EscalationTimer.kind == "step") == 1

    async def test_201_without_any_chain_still_stores_the_deadline(self, h: Harness) -> None:
        r = await post(h, BODY)

        report_id = r.json()["id"]
        assert await h.count(Report, Report.id == report_id) == 1
        deadline = (EscalationTimer.report_id == report_id, EscalationTimer.kind == "deadline")
        assert await h.count(EscalationTimer, *deadline) == 1
        assert await h.count(Page) == 0
        assert await h.count(AuditEvent, AuditEvent.type == "received") == 1

    async def test_a_rejected_report_leaves_nothing_behind(self, h: Harness) -> None:
        await h.staff("Anna")
        await h.chain(("voice", ["Anna"], 30))

        await post(h, {**BODY, "callback_phone": "nope"})

        assert await h.count(Report) == 0
        assert await h.count(EscalationTimer) == 0
        assert await h.count(Page) == 0
        assert await h.count(AuditEvent, AuditEvent.report_id.is_not(None)) == 0
        await h.tick()
        h.expect_none()


class TestIdempotency:
    async def test_same_key_and_body_returns_the_same_report_and_pages_once(
        self, h: Harness
    ) -> None:
        await h.staff("Anna")
        await h.chain(("voice", ["Anna"], 30))

        first = await post(h, BODY, key="k-1")
        h.clock.advance(5)
        again = await post(h, BODY, key="k-1")

        assert first.status_code == 201, first.text
        assert again.status_code in (200, 201), again.text
        assert again.json()["id"] == first.json()["id"]
        assert again.json()["reference"] == first.json()["reference"]
        assert again.json()["received_at"] == first.json()["received_at"]
        assert await h.count(Report) == 1
        await h.tick()
        h.expect(("Anna", VOICE))

    async def test_field_order_does_not_make_a_different_body(self, h: Harness) -> None:
        body = {"category": "lost_card", "callback_phone": "06 12345678", "language": "en"}
        reordered = dict(reversed(list(body.items())))
        first = await post(h, body, key="k-2")
        again = await post(h, reordered, key="k-2")
        assert again.json()["id"] == first.json()["id"]
        assert await h.count(Report) == 1

    async def test_same_key_with_a_different_body_is_422_naming_the_header(
        self, h: Harness
    ) -> None:
        first = await post(h, BODY, key="k-3")
        r = await post(h, {**BODY, "category": "lost_card"}, key="k-3")

        assert_error(r, 422, "Idempotency-Key")
        assert await h.count(Report) == 1
        seen = await h.get(first.json()["id"])
        assert seen["category"] == "fraud"

    async def test_different_keys_make_different_reports(self, h: Harness) -> None:
        a = await post(h, customer(1), key="k-a")
        b = await post(h, customer(2), key="k-b")
        assert a.json()["id"] != b.json()["id"]
        assert await h.count(Report) == 2

    async def test_without_a_key_every_request_is_a_new_report(self, h: Harness) -> None:
        a = await post(h, customer(1))
        b = await post(h, customer(2))
        assert a.json()["id"] != b.json()["id"]
        assert await h.count(Report) == 2

    async def test_concurrent_requests_with_one_key_make_exactly_one_report(
        self, h: Harness
    ) -> None:
        await h.staff("Anna")
        await h.chain(("voice", ["Anna"], 30))

        responses = await asyncio.gather(*(post(h, BODY, key="k-race") for _ in range(4)))

        assert all(r.status_code in (200, 201) for r in responses), [r.text for r in responses]
        assert len({r.json()["id"] for r in responses}) == 1
        assert await h.count(Report) == 1
        assert await h.count(AuditEvent, AuditEvent.type == "received") == 1
        await h.tick()
        h.expect(("Anna", VOICE))

    async def test_concurrent_different_bodies_with_one_key_one_wins(self, h: Harness) -> None:
        a, b = await asyncio.gather(
            post(h, BODY, key="k-race-2"),
            post(h, {**BODY, "category": "other"}, key="k-race-2"),
        )

        assert sorted([a.status_code, b.status_code]) == [201, 422], (a.text, b.text)
        loser = a if a.status_code == 422 else b
        assert_error(loser, 422, "Idempotency-Key")
        assert await h.count(Report) == 1

    async def test_keys_are_scoped_per_token(self, h: Harness) -> None:
        other_app = await h.token(Role.APP)

        mine = await post(h, customer(1), key="shared")
        theirs = await post(h, customer(2), key="shared", headers=other_app)
        mine_again = await post(h, customer(1), key="shared")
        theirs_different = await post(h, {**customer(2), "category": "other"}, key="shared")

        assert theirs.status_code == 201
        assert theirs.json()["id"] != mine.json()["id"]
        assert mine_again.json()["id"] == mine.json()["id"]
        assert_error(theirs_different, 422, "Idempotency-Key")
        assert await h.count(Report) == 2

    async def test_a_rejected_request_does_not_use_up_its_key(self, h: Harness) -> None:
        rejected = await post(h, {**BODY, "callback_phone": "nope"}, key="k-retry")
        fixed = await post(h, BODY, key="k-retry")

        assert_error(rejected, 422, "callback_phone")
        assert fixed.status_code == 201, fixed.text
        assert (await post(h, BODY, key="k-retry")).json()["id"] == fixed.json()["id"]
        assert await h.count(Report) == 1

    async def test_an_overlong_key_is_rejected_naming_the_header(self, h: Harness) -> None:
        r = await post(h, BODY, key="k" * 256)
        assert_error(r, 422, "Idempotency-Key")
        assert await h.count(Report) == 0
