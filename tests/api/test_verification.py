"""Phone verification: `POST /v1/staff/{id}/verification` sends a 6-digit code by SMS or by a
call that says it; `POST /v1/staff/{id}/verification/confirm` with the code marks the phone
verified. Wrong codes count, five void the code, so do ten minutes and a changed phone."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select, update

from routing.notify import texts
from routing.notify.models import OutboundMessage, PhoneVerification
from routing.staff.models import Staff
from tests.harness import SMS, VOICE, Harness
from tests.scenarios.twilio_harness import ANNA, PUBLIC, SOS_NUMBER, Twilio, tw

__all__ = ["tw"]

LANDLINE = "+31201234567"


def start_url(staff_id: str) -> str:
    return f"/v1/staff/{staff_id}/verification"


def confirm_url(staff_id: str) -> str:
    return f"/v1/staff/{staff_id}/verification/confirm"


async def start(
    h: Harness, staff_id: str, headers: dict[str, str], body: dict[str, Any] | None = None
) -> httpx.Response:
    if body is None:
        return await h.client.post(start_url(staff_id), headers=headers)
    return await h.client.post(start_url(staff_id), json=body, headers=headers)


async def confirm(h: Harness, staff_id: str, headers: dict[str, str], code: str) -> httpx.Response:
    return await h.client.post(confirm_url(staff_id), json={"code": code}, headers=headers)


def code_in(text: str) -> str:
    found = re.search(r"\b(\d{6})\b", text)
    assert found is not None, text
    return found.group(1)


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


async def anna_with_code(h: Harness) -> tuple[str, str]:
    """Anna asks for a code by SMS and receives it; returns her id and the code."""
    anna = await h.staff("Anna", ANNA)
    assert (await start(h, anna, h.as_staff("Anna"))).status_code == 202
    await h.tick()
    [sms] = h.expect_texts((ANNA, SMS))
    return anna, code_in(sms.body)


async def open_verification(h: Harness, staff_id: str) -> PhoneVerification | None:
    async with h.container.db() as session:
        return await session.get(PhoneVerification, staff_id)


def error(r: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = r.json()["error"]
    return body


class TestBySms:
    async def test_the_code_arrives_and_confirming_it_verifies_the_phone(self, h: Harness) -> None:
        anna = await h.staff("Anna", ANNA)

        started = await start(h, anna, h.as_staff("Anna"), {"channel": "sms"})

        assert started.status_code == 202, started.text
        expires_at = h.clock.now() + timedelta(minutes=10)
        assert started.json() == {"expires_at": expires_at.isoformat().replace("+00:00", "Z")}
        await h.tick()
        [sms] = h.expect_texts((ANNA, SMS))
        code = code_in(sms.body)
        assert "10 minuten" in sms.body

        confirmed = await confirm(h, anna, h.as_staff("Anna"), code)

        assert confirmed.status_code == 200, confirmed.text
        assert confirmed.json()["id"] == anna
        assert confirmed.json()["phone_verified_at"] is not None
        assert await open_verification(h, anna) is None
        listed = (await h.client.get("/v1/staff", headers=h.admin)).json()
        assert listed[0]["phone_verified_at"] is not None

    async def test_the_code_is_not_kept_in_the_clear(self, h: Harness) -> None:
        anna, code = await anna_with_code(h)

        verification = await open_verification(h, anna)
        async with h.container.db() as session:
            [message] = list(await session.scalars(select(OutboundMessage)))

        assert verification is not None
        assert code not in verification.code_hash
        assert message.state == "sent"
        assert message.body == texts.CODE_REMOVED  # gone from the outbox once sent

    async def test_without_a_body_the_code_goes_by_sms(self, h: Harness) -> None:
        await anna_with_code(h)  # `start` without a JSON body; the SMS was expected there

    async def test_a_new_code_replaces_the_old_one(self, h: Harness) -> None:
        anna, first = await anna_with_code(h)
        assert (await start(h, anna, h.as_staff("Anna"))).status_code == 202
        await h.tick()
        [sms] = h.expect_texts((ANNA, SMS))
        second = code_in(sms.body)

        if first != second:  # one chance in a million that they are the same
            assert (await confirm(h, anna, h.as_staff("Anna"), first)).status_code == 422
        assert (await confirm(h, anna, h.as_staff("Anna"), second)).status_code == 200

    async def test_two_requests_before_sending_send_only_the_newest(self, h: Harness) -> None:
        anna = await h.staff("Anna", ANNA)
        await start(h, anna, h.as_staff("Anna"))
        await start(h, anna, h.as_staff("Anna"))

        await h.tick()

        [sms] = h.expect_texts((ANNA, SMS))  # the first code was canceled before it left
        assert (await confirm(h, anna, h.as_staff("Anna"), code_in(sms.body))).status_code == 200

    async def test_at_most_five_codes_an_hour(self, h: Harness) -> None:
        anna = await h.staff("Anna", ANNA)
        for _ in range(5):
            assert (await start(h, anna, h.as_staff("Anna"))).status_code == 202

        refused = await start(h, anna, h.as_staff("Anna"))

        assert refused.status_code == 429
        assert error(refused)["code"] == "rate_limited"
        h.clock.advance(minutes=61)
        assert (await start(h, anna, h.as_staff("Anna"))).status_code == 202
        await h.tick()
        h.expect_texts((ANNA, SMS))  # and only the newest of all those codes was sent

    async def test_no_sms_to_a_landline_but_a_call_is_fine(self, h: Harness) -> None:
        desk = await h.staff("Desk", LANDLINE)

        by_sms = await start(h, desk, h.admin, {"channel": "sms"})
        by_call = await start(h, desk, h.admin, {"channel": "voice"})

        assert (by_sms.status_code, error(by_sms)["field"]) == (422, "channel")
        assert by_call.status_code == 202
        await h.tick()
        [call] = h.expect_texts((LANDLINE, VOICE))
        assert "verificatiecode" in call.body

    async def test_no_sms_after_stop(self, h: Harness) -> None:
        anna = await h.staff("Anna", ANNA)
        async with h.container.db.begin() as session:
            await session.execute(update(Staff).values(sms_stopped_at=h.clock.now()))

        refused = await start(h, anna, h.as_staff("Anna"))

        assert (refused.status_code, error(refused)["field"]) == (422, "channel")

    async def test_an_unknown_channel_names_the_field(self, h: Harness) -> None:
        anna = await h.staff("Anna", ANNA)

        r = await start(h, anna, h.as_staff("Anna"), {"channel": "pigeon"})

        assert (r.status_code, error(r)["field"]) == (422, "channel")


class TestConfirm:
    async def test_a_wrong_code_names_the_field_and_counts(self, h: Harness) -> None:
        anna, code = await anna_with_code(h)

        r = await confirm(h, anna, h.as_staff("Anna"), wrong(code))

        assert (r.status_code, error(r)["field"]) == (422, "code")
        assert error(r)["message"] == "wrong code (4 tries left)"
        verification = await open_verification(h, anna)
        assert verification is not None
        assert verification.attempts == 1  # committed, although the request failed

    async def test_five_wrong_codes_void_it(self, h: Harness) -> None:
        anna, code = await anna_with_code(h)
        for _ in range(4):
            assert (await confirm(h, anna, h.as_staff("Anna"), wrong(code))).status_code == 422

        fifth = await confirm(h, anna, h.as_staff("Anna"), wrong(code))
        right_too_late = await confirm(h, anna, h.as_staff("Anna"), code)

        assert "request a new code" in error(fifth)["message"]
        assert (right_too_late.status_code, error(right_too_late)["field"]) == (422, "code")
        assert "request a new code" in error(right_too_late)["message"]
        assert await open_verification(h, anna) is None
        listed = (await h.client.get("/v1/staff", headers=h.admin)).json()
        assert listed[0]["phone_verified_at"] is None

    async def test_four_wrong_codes_then_the_right_one_works(self, h: Harness) -> None:
        anna, code = await anna_with_code(h)
        for _ in range(4):
            await confirm(h, anna, h.as_staff("Anna"), wrong(code))

        assert (await confirm(h, anna, h.as_staff("Anna"), code)).status_code == 200

    async def test_the_code_expires_after_ten_minutes(self, h: Harness) -> None:
        anna, code = await anna_with_code(h)
        h.clock.advance(minutes=10)

        r = await confirm(h, anna, h.as_staff("Anna"), code)

        assert (r.status_code, error(r)["field"]) == (422, "code")
        assert error(r)["message"] == "the code has expired: request a new code"
        assert await open_verification(h, anna) is None

    async def test_just_before_expiry_it_still_works(self, h: Harness) -> None:
        anna, code = await anna_with_code(h)
        h.clock.advance(minutes=10, seconds=-1)

        assert (await confirm(h, anna, h.as_staff("Anna"), code)).status_code == 200

    async def test_a_changed_phone_voids_the_code(self, h: Harness) -> None:
        anna, code = await anna_with_code(h)
        async with h.container.db.begin() as session:
            await session.execute(update(Staff).values(phone="+31699999999"))

        r = await confirm(h, anna, h.as_staff("Anna"), code)

        assert (r.status_code, error(r)["field"]) == (422, "code")
        assert "phone number changed" in error(r)["message"]
        async with h.container.db() as session:
            staff = await session.get(Staff, anna)
        assert staff is not None
        assert staff.phone_verified_at is None

    async def test_a_malformed_code_is_refused_without_counting(self, h: Harness) -> None:
        anna, _ = await anna_with_code(h)

        r = await confirm(h, anna, h.as_staff("Anna"), "12ab56")

        assert (r.status_code, error(r)["field"]) == (422, "code")
        verification = await open_verification(h, anna)
        assert verification is not None
        assert verification.attempts == 0

    async def test_without_a_requested_code(self, h: Harness) -> None:
        anna = await h.staff("Anna", ANNA)

        r = await confirm(h, anna, h.as_staff("Anna"), "123456")

        assert (r.status_code, error(r)["field"]) == (422, "code")


class TestWhoMay:
    async def test_another_staff_member_is_forbidden(self, h: Harness) -> None:
        anna, code = await anna_with_code(h)
        await h.staff("Bram", "+31622222222")

        started = await start(h, anna, h.as_staff("Bram"))
        confirmed = await confirm(h, anna, h.as_staff("Bram"), code)

        assert (started.status_code, confirmed.status_code) == (403, 403)
        verification = await open_verification(h, anna)
        assert verification is not None
        assert verification.attempts == 0  # Bram's try did not count either

    async def test_an_app_token_is_forbidden(self, h: Harness) -> None:
        anna = await h.staff("Anna", ANNA)

        assert (await start(h, anna, h.app)).status_code == 403

    async def test_an_admin_may_do_it_for_anyone(self, h: Harness) -> None:
        anna = await h.staff("Anna", ANNA)
        assert (await start(h, anna, h.admin)).status_code == 202
        await h.tick()
        [sms] = h.expect_texts((ANNA, SMS))

        assert (await confirm(h, anna, h.admin, code_in(sms.body))).status_code == 200

    async def test_an_unknown_staff_member_is_404(self, h: Harness) -> None:
        missing = "00000000-0000-0000-0000-000000000000"

        started = await start(h, missing, h.admin)
        confirmed = await confirm(h, missing, h.admin, "123456")

        assert (started.status_code, error(started)["field"]) == (404, "staff_id")
        assert (confirmed.status_code, error(confirmed)["field"]) == (404, "staff_id")

    async def test_without_a_token_it_is_401(self, h: Harness) -> None:
        anna = await h.staff("Anna", ANNA)

        assert (await start(h, anna, {})).status_code == 401


# --- by a call, through Twilio -----------------------------------------------------------------


def heard_code(spoken: str, language: str) -> str:
    """The digits a listener writes down from the spoken words."""
    words = texts.DIGITS[language]
    said = re.search(r":\s*([^.]+)\.", spoken)
    assert said is not None, spoken
    return "".join(str(words.index(w.strip())) for w in said.group(1).split(","))


class TestByCall:
    async def test_a_call_says_the_code_twice_and_confirming_it_verifies(self, tw: Twilio) -> None:
        anna = await tw.h.staff("Anna", ANNA)

        started = await start(tw.h, anna, tw.h.as_staff("Anna"), {"channel": "voice"})
        await tw.h.tick()

        assert started.status_code == 202
        call = await tw.fake.expect_call(to=ANNA)
        assert call.from_ == SOS_NUMBER
        assert call.param("Url") is None
        twiml = call.param("Twiml") or ""
        assert twiml.startswith(
            '<?xml version="1.0" encoding="UTF-8"?><Response><Say language="nl-NL">'
        )
        assert call.param("StatusCallback") == (
            f"{PUBLIC}/webhooks/twilio/message-status?message=1"
        )
        await call.answer()
        [spoken] = call.heard
        code = heard_code(spoken, "nl")
        assert spoken.count(texts.spoken_digits(language="nl", code=code)) == 2
        assert not any(ch.isdigit() for ch in spoken)
        async with tw.h.container.db() as session:
            message = await session.scalar(select(OutboundMessage))
        assert message is not None
        assert (message.state, message.external_id) == ("delivered", call.sid)

        confirmed = await confirm(tw.h, anna, tw.h.as_staff("Anna"), code)

        assert confirmed.status_code == 200
        assert confirmed.json()["phone_verified_at"] is not None

    async def test_in_english_for_an_english_speaker(self, tw: Twilio) -> None:
        anna = await tw.h.staff("Anna", ANNA, languages=["en"])

        await start(tw.h, anna, tw.h.as_staff("Anna"), {"channel": "voice"})
        await tw.h.tick()

        call = await tw.fake.expect_call(to=ANNA)
        assert '<Say language="en-GB">' in (call.param("Twiml") or "")
        await call.answer()
        assert call.heard[0].startswith("This is the bank's SOS service.")

    async def test_an_unanswered_call_fails_the_text(self, tw: Twilio) -> None:
        anna = await tw.h.staff("Anna", ANNA)
        await start(tw.h, anna, tw.h.as_staff("Anna"), {"channel": "voice"})
        await tw.h.tick()
        call = await tw.fake.expect_call(to=ANNA)

        await call.no_answer()

        async with tw.h.container.db() as session:
            message = await session.scalar(select(OutboundMessage))
        assert message is not None
        assert (message.state, message.error) == ("failed", "call no answer")

    async def test_by_sms_through_twilio(self, tw: Twilio) -> None:
        anna = await tw.h.staff("Anna", ANNA)
        await start(tw.h, anna, tw.h.as_staff("Anna"))
        await tw.h.tick()

        sms = await tw.fake.expect_sms(to=ANNA)
        await sms.deliver()

        confirmed = await confirm(tw.h, anna, tw.h.as_staff("Anna"), code_in(sms.body))
        assert confirmed.status_code == 200
