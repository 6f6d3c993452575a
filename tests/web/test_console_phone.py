"""The console's "My phone" page: a staff member asks for a code by SMS or call, types it in, and
their phone counts as verified. Same session and CSRF as the rest of the console."""

import re

import httpx

from routing.notify.models import PhoneVerification
from tests.harness import SMS, VOICE, Harness
from tests.web.console_support import sign_in

ANNA = "+31611111111"


async def _signed_in(h: Harness, *, languages: list[str] | None = None) -> str:
    anna = await h.staff("Anna", ANNA, languages=languages or ["en"])
    token = h.staff_tokens["Anna"].removeprefix("Bearer ")
    assert (await sign_in(h.client, token)).status_code == 303
    return anna


async def _csrf(h: Harness) -> str:
    page = (await h.client.get("/console/phone")).text
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
    assert found
    return found.group(1)


async def _ask(h: Harness, channel: str = "sms") -> httpx.Response:
    return await h.client.post(
        "/console/phone/code", data={"csrf": await _csrf(h), "channel": channel}
    )


async def _confirm(h: Harness, code: str) -> httpx.Response:
    return await h.client.post(
        "/console/phone/confirm", data={"csrf": await _csrf(h), "code": code}
    )


def _code(text: str) -> str:
    found = re.search(r"\b(\d{6})\b", text)
    assert found
    return found.group(1)


async def test_ask_for_a_code_by_sms_and_type_it_in(h: Harness) -> None:
    await _signed_in(h)
    page = (await h.client.get("/console/phone")).text
    assert "Not verified yet." in page
    assert "+31*******11" in page  # the number, masked

    asked = await _ask(h)
    assert (asked.status_code, asked.headers["location"]) == (303, "/console/phone?sent=1")
    assert "The code is on its way." in (await h.client.get("/console/phone?sent=1")).text
    await h.tick()
    [sms] = h.expect_texts((ANNA, SMS))

    done = await _confirm(h, _code(sms.body)[:3] + " " + _code(sms.body)[3:])

    assert (done.status_code, done.headers["location"]) == (303, "/console/phone?verified=1")
    page = (await h.client.get("/console/phone?verified=1")).text
    assert "Your phone is verified." in page
    assert "Verified on 2026-01-05 09:00 UTC." in page


async def test_a_wrong_code_says_so_and_counts(h: Harness) -> None:
    anna = await _signed_in(h, languages=["nl"])
    await _ask(h)
    await h.tick()
    [sms] = h.expect_texts((ANNA, SMS))
    code = _code(sms.body)

    wrong = await _confirm(h, f"{(int(code) + 1) % 10**6:06d}")
    malformed = await _confirm(h, "12ab")

    assert wrong.status_code == 422
    assert "Die code klopt niet." in wrong.text
    assert malformed.status_code == 422
    assert "Vul de 6 cijfers van de code in." in malformed.text
    async with h.container.db() as session:
        verification = await session.get(PhoneVerification, anna)
    assert verification is not None
    assert verification.attempts == 1  # the malformed one did not count


async def test_call_me_sends_the_code_by_a_call(h: Harness) -> None:
    await _signed_in(h)

    assert (await _ask(h, "voice")).status_code == 303
    await h.tick()

    [call] = h.expect_texts((ANNA, VOICE))
    assert call.body.startswith("This is the bank's SOS service.")


async def test_a_form_without_the_csrf_value_changes_nothing(h: Harness) -> None:
    await _signed_in(h)

    refused = await h.client.post("/console/phone/code", data={"channel": "sms"})

    assert refused.status_code == 403
    await h.tick()  # nothing was queued: the sender fails the test on any text


async def test_signed_out_goes_to_the_sign_in_page(h: Harness) -> None:
    r = await h.client.get("/console/phone")

    assert (r.status_code, r.headers["location"]) == (303, "/console/login")
