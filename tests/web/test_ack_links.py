"""Accepting from a link in an SMS: opening changes nothing, the button accepts once."""

import re

from routing.page.models import AckLink
from tests.harness import SMS, VOICE, Harness, types


async def _paged(h: Harness, language: str = "en") -> tuple[dict[str, object], str]:
    await h.staff("Anna", languages=[language])
    await h.staff("Bram")
    await h.chain(("sms", ["Anna"], 60), ("voice", ["Bram"], 60))
    report = await h.report(callback_phone="06 12345678")
    await h.tick()
    (page,) = h.expect(("Anna", SMS))
    found = re.search(r"(https?://\S+)/ack/(\S+)$", page.text)
    assert found, f"no accept link in {page.text!r}"
    return report, found.group(2)


async def test_opening_the_link_changes_nothing(h: Harness) -> None:
    report, token = await _paged(h)
    for _ in range(2):  # a link scanner, then the person
        shown = await h.client.get(f"/ack/{token}")
        assert shown.status_code == 200
        assert str(report["reference"]) in shown.text
        assert f'action="/ack/{token}"' in shown.text
        assert "+31612345678" not in shown.text  # the number only after accepting
    assert (await h.get(str(report["id"])))["acknowledged_at"] is None
    assert await h.count(AckLink, AckLink.used_at.is_not(None)) == 0


async def test_the_button_accepts_once_and_shows_the_next_step(h: Harness) -> None:
    report, token = await _paged(h)

    accepted = await h.client.post(f"/ack/{token}")

    assert accepted.status_code == 200
    assert "+31612345678" in accepted.text
    seen = await h.get(str(report["id"]))
    assert seen["acknowledged_by"]["name"] == "Anna"
    assert "ack link" in next(e for e in seen["timeline"] if e["type"] == "acknowledged")["detail"]
    again = await h.client.post(f"/ack/{token}")
    assert again.status_code == 409
    assert "already used" in again.text
    await h.tick()
    h.expect_accepted_text(report, by="Anna")
    await h.advance(120)  # no call to Bram: the chain stopped
    legs = sorted(call.leg for call in h.sender.room_calls)
    assert legs == ["customer", "staff"]
    assert "bridge_started" in types(await h.get(str(report["id"])))


async def test_an_expired_link_accepts_nothing(h: Harness) -> None:
    report, token = await _paged(h)
    await h.advance(31 * 60)
    h.expect(("Bram", VOICE))
    assert (await h.client.get(f"/ack/{token}")).status_code == 410
    assert (await h.client.post(f"/ack/{token}")).status_code == 410
    assert (await h.get(str(report["id"])))["acknowledged_at"] is None


async def test_a_link_after_someone_else_accepted_says_who(h: Harness) -> None:
    report, token = await _paged(h)
    await h.ack(str(report["id"]), "Bram")
    shown = await h.client.get(f"/ack/{token}")
    assert "Bram" in shown.text
    assert "Accept:" not in shown.text
    taken = await h.client.post(f"/ack/{token}")
    assert taken.status_code == 409
    assert "Bram" in taken.text
    assert (await h.get(str(report["id"])))["acknowledged_by"]["name"] == "Bram"


async def test_unknown_or_mangled_tokens_are_404(h: Harness) -> None:
    _, token = await _paged(h)
    for bad in ("x", token[:-1] + ("A" if token[-1] != "A" else "B"), "a" * 500):
        assert (await h.client.get(f"/ack/{bad}")).status_code == 404
        assert (await h.client.post(f"/ack/{bad}")).status_code == 404


async def test_pages_carry_security_headers_and_need_nothing_from_the_internet(h: Harness) -> None:
    _, token = await _paged(h)
    shown = await h.client.get(f"/ack/{token}")
    assert "frame-ancestors 'none'" in shown.headers["content-security-policy"]
    assert shown.headers["x-content-type-options"] == "nosniff"
    assert "<script" not in shown.text
    assert re.findall(r'(?:href|src)="(https?:)', shown.text) == []
    css = await h.client.get("/static/sos.css")
    assert css.status_code == 200


async def test_the_page_speaks_the_staff_members_language(h: Harness) -> None:
    _, token = await _paged(h, language="nl")
    shown = await h.client.get(f"/ack/{token}")
    assert "Aannemen: ik help deze klant" in shown.text
    assert "fraude" in shown.text
    accepted = await h.client.post(f"/ack/{token}")
    assert "Jij hebt melding" in accepted.text
