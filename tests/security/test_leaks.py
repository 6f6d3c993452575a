"""Error responses and logs never hold a full phone number (only its last two digits), a
description, a token or an auth header.

The whole suite runs with the production log formatter and filter and fails on a leak
(`log_leaks` in tests/conftest.py); these tests pin the masking format and the 422 bodies, which
pydantic would otherwise happily fill with the client's input."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest

from app import logs
from providers.base import PermanentProviderError
from providers.fake import Outcome
from routing.phone import mask_numbers
from tests.harness import Harness
from tests.security.test_encryption import everything

PHONE = "+31612345678"
DESCRIPTION = "my savings of 18000 euro went to an account in Lisbon tonight"
# A number in every spelling a client may send it in.
SPELLINGS = (PHONE, "0612345678", "06 12345678", "612345678")


def assert_nothing_echoed(r: httpx.Response) -> dict[str, Any]:
    assert 400 <= r.status_code < 500, r.text
    for spelling in SPELLINGS:
        assert spelling not in r.text, r.text
    assert DESCRIPTION not in r.text
    assert DESCRIPTION[:20] not in r.text
    return dict(r.json()["error"])


class TestErrorResponses:
    @pytest.mark.parametrize(
        "body",
        [
            {"category": "unknown", "callback_phone": PHONE, "description": DESCRIPTION},
            {"category": "fraud", "callback_phone": PHONE + "99999", "description": DESCRIPTION},
            {"category": "fraud", "callback_phone": PHONE, "description": DESCRIPTION * 40},
            {"category": "fraud", "callback_phone": PHONE, "description": {"text": DESCRIPTION}},
            {"category": "fraud", "callback_phone": PHONE, "customer_ref": DESCRIPTION * 2},
            {"category": "fraud", "callback_phone": [PHONE], "description": DESCRIPTION},
            {"category": "fraud", "callback_phone": PHONE, "callback_at": DESCRIPTION},
        ],
        ids=[
            "bad-category",
            "bad-phone",
            "long-description",
            "description-not-text",
            "long-customer-ref",
            "phone-not-text",
            "bad-time",
        ],
    )
    async def test_a_rejected_report_is_not_echoed(self, h: Harness, body: dict[str, Any]) -> None:
        r = await h.client.post("/v1/reports", json=body, headers=h.app)

        error = assert_nothing_echoed(r)
        assert r.status_code == 422
        assert error["field"] in {"category", "callback_phone", "description", "customer_ref"} | {
            "callback_at"
        }

    async def test_a_key_the_client_made_up_is_not_echoed(self, h: Harness) -> None:
        body = {"category": "fraud", "callback_phone": "06 11112222", PHONE: DESCRIPTION}
        r = await h.client.post("/v1/reports", json=body, headers=h.app)

        error = assert_nothing_echoed(r)
        assert (r.status_code, error["field"]) == (422, "?")

    async def test_broken_json_is_not_echoed(self, h: Harness) -> None:
        content = json.dumps({"callback_phone": PHONE, "description": DESCRIPTION})[:-1]
        r = await h.client.post(
            "/v1/reports",
            content=content.encode(),
            headers={**h.app, "Content-Type": "application/json"},
        )

        assert_nothing_echoed(r)

    async def test_a_staff_member_with_a_bad_phone_is_not_echoed(self, h: Harness) -> None:
        body = {"name": "Anna", "phone": PHONE + "12345"}
        r = await h.client.post("/v1/staff", json=body, headers=h.admin)

        assert assert_nothing_echoed(r)["field"] == "phone"

    async def test_a_domain_error_masks_a_number_it_repeats(self, h: Harness) -> None:
        body = {"name": "x", "steps": [{"channel": "sms", "targets": [PHONE], "wait_seconds": 9}]}
        r = await h.client.post("/v1/chains", json=body, headers=h.admin)

        error = assert_nothing_echoed(r)
        assert "+*********78" in error["message"], error


class TestAuditTrail:
    async def test_a_provider_message_naming_the_customer_is_masked(self, h: Harness) -> None:
        """Audit events are kept for good: a provider's error text must not bring a number in."""
        await h.staff("Anna", "+31687654321")
        report = await h.report(callback_phone=PHONE, description=DESCRIPTION)
        h.sender.script_texts(
            Outcome(
                error=PermanentProviderError,
                detail=f"twilio 400 / 21211: The 'To' number {PHONE} is not a valid phone number.",
            )
        )
        assert (await h.ack(report["id"], "Anna")).status_code == 200
        await h.tick()  # "Anna belt u nu" fails

        timeline = (await h.get(report["id"]))["timeline"]
        failed = [e["detail"] for e in timeline if e["type"] == "message_failed"]
        assert failed == [
            "accepted SMS to the customer failed: twilio 400 / 21211: The 'To' number "
            "+*********78 is not a valid phone number."
        ]
        dump = await everything(h.container.settings.database_url)
        for spelling in SPELLINGS:
            assert spelling not in dump
        assert DESCRIPTION not in dump


class TestMasking:
    @pytest.mark.parametrize(
        ("number", "masked"),
        [
            (PHONE, "+*********78"),
            ("+44 20 7946 0958", "+**********58"),
            ("06-1234 5678", "********78"),
            ("%2B31612345678", "+*********78"),
        ],
    )
    def test_only_the_last_two_digits_stay(self, number: str, masked: str) -> None:
        assert mask_numbers(f"calling {number} now") == f"calling {masked} now"

    def test_a_log_line_keeps_only_the_last_two_digits(self) -> None:
        record = logging.makeLogRecord(
            {"msg": "SMS to %s failed", "args": (PHONE,), "levelno": logging.WARNING}
        )
        logs.Redact().filter(record)

        assert record.getMessage() == "SMS to +*********78 failed"
        digits = "".join(c for c in record.getMessage() if c.isdigit())
        assert digits == "78"
