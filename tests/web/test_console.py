"""The staff console: sign in, see what is open by time left, accept, resolve, sign out; and the
promise over 30 days as charts and a CSV that matches the database."""

import csv
import io
import re

import httpx

from routing.auth.models import StaffSession
from tests.harness import VOICE, Harness
from tests.web.console_support import sign_in


async def _sign_in(h: Harness, name: str) -> httpx.Response:
    token = h.staff_tokens[name].removeprefix("Bearer ")
    return await sign_in(h.client, token)


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
    assert found
    return found.group(1)


async def _setup(h: Harness) -> dict[str, object]:
    await h.staff("Anna", languages=["en"])
    await h.chain(("voice", ["Anna"], 3600))
    report = await h.report()
    await h.tick()
    h.expect(("Anna", VOICE))
    return report


async def test_the_console_needs_a_staff_sign_in(h: Harness) -> None:
    await _setup(h)
    assert (await h.client.get("/console")).headers["location"] == "/console/login"
    refused = await sign_in(h.client, h.app["Authorization"][7:])
    assert refused.status_code == 401
    assert (await sign_in(h.client, "nope")).status_code == 401

    signed = await _sign_in(h, "Anna")

    assert signed.status_code == 303
    cookie = signed.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert (await h.client.get("/console")).status_code == 200


async def test_open_reports_by_time_left_with_the_ones_at_risk_standing_out(h: Harness) -> None:
    first = await _setup(h)
    h.clock.advance(500)
    second = await h.report()
    await h.tick()
    h.expect(("Anna", VOICE))
    await _sign_in(h, "Anna")

    page = (await h.client.get("/console")).text

    assert page.index(str(first["reference"])) < page.index(str(second["reference"]))
    risky = re.findall(r'class="card report([^"]*)" data-report="([^"]+)"', page)
    assert {rid: css for css, rid in risky}[str(first["id"])].strip() == "at-risk"
    assert "at-risk" not in {rid: css for css, rid in risky}[str(second["id"])]
    assert "voice to Anna: sent" in page
    assert 'http-equiv="refresh"' in page


async def test_accept_and_resolve_from_the_console(h: Harness) -> None:
    report = await _setup(h)
    await _sign_in(h, "Anna")
    page = (await h.client.get("/console")).text
    forged = await h.client.post(f"/console/reports/{report['id']}/ack", data={"csrf": "0" * 64})
    assert forged.status_code == 403
    assert (await h.get(str(report["id"])))["acknowledged_at"] is None

    accepted = await h.client.post(
        f"/console/reports/{report['id']}/ack", data={"csrf": _csrf(page)}
    )

    assert accepted.status_code == 303
    seen = await h.get(str(report["id"]))
    assert seen["acknowledged_by"]["name"] == "Anna"
    await h.tick()  # the acceptor and the customer are called into one conference
    assert sorted(call.leg for call in h.sender.room_calls) == ["customer", "staff"]
    h.expect_accepted_text(report, by="Anna")
    await h.client.post(f"/console/reports/{report['id']}/resolve", data={"csrf": _csrf(page)})
    assert (await h.get(str(report["id"])))["status"] == "resolved"
    assert str(report["reference"]) not in (await h.client.get("/console")).text


async def test_sign_out_ends_the_session_on_the_server(h: Harness) -> None:
    await _setup(h)
    signed = await _sign_in(h, "Anna")
    secret = signed.cookies["sos_session"]
    page = (await h.client.get("/console")).text

    await h.client.post("/console/logout", data={"csrf": _csrf(page)})

    h.client.cookies.set("sos_session", secret, path="/console")
    assert (await h.client.get("/console")).status_code == 303
    assert await h.count(StaffSession, StaffSession.ended_at.is_not(None)) == 1


async def test_an_idle_session_expires(h: Harness) -> None:
    await _setup(h)
    await _sign_in(h, "Anna")
    h.clock.advance(29 * 60)
    assert (await h.client.get("/console")).status_code == 200
    h.clock.advance(31 * 60)
    assert (await h.client.get("/console")).status_code == 303


async def test_a_reports_whole_timeline(h: Harness) -> None:
    report = await _setup(h)
    await _sign_in(h, "Anna")
    page = (await h.client.get(f"/console/reports/{report['id']}")).text
    for event in ("received", "page_sent"):
        assert event in page
    for bad in ("nope", "a%00b", "x" * 5000):
        assert (await h.client.get(f"/console/reports/{bad}")).status_code == 404


async def test_sla_page_and_csv_match_the_database(h: Harness) -> None:
    await h.staff("Anna", languages=["en"])
    await h.chain(("voice", ["Anna"], 3600))
    kept = await h.report()
    await h.tick()
    h.expect(("Anna", VOICE))
    await h.advance(90)
    await h.ack(str(kept["id"]), "Anna")
    late = await h.report()
    await h.tick()
    h.expect(("Anna", VOICE))
    h.expect_accepted_text(kept, by="Anna")
    await h.advance(700)
    await h.ack(str(late["id"]), "Anna")
    await h.report()
    await h.tick()
    h.expect(("Anna", VOICE))
    h.expect_accepted_text(late, by="Anna")
    await _sign_in(h, "Anna")

    page = (await h.client.get("/console/sla")).text
    assert re.search(r'id="total">3<', page)
    assert re.search(r'id="met">1<', page)
    assert re.search(r'id="missed">1<', page)
    assert re.search(r'id="open">1<', page)
    assert page.count("<svg") == 2

    exported = await h.client.get("/console/sla.csv")
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    by_reference = {r["reference"]: r for r in rows}
    assert len(rows) == 3
    assert by_reference[str(kept["reference"])]["met"] == "met"
    assert float(by_reference[str(kept["reference"])]["time_to_ack_seconds"]) == 90
    assert by_reference[str(late["reference"])]["met"] == "missed"
    api = (await h.client.get("/v1/sla", headers=h.admin)).json()
    assert (api["met"], api["missed"], api["open"]) == (1, 1, 1)


async def test_the_console_speaks_the_staff_members_language(h: Harness) -> None:
    await h.staff("Bram", languages=["nl"])
    await h.chain(("voice", ["Bram"], 3600))
    await h.report()
    await h.tick()
    h.expect(("Bram", VOICE))
    login = await h.client.get("/console/login", headers={"Accept-Language": "nl-NL,nl;q=0.9"})
    assert "Jouw medewerkerstoken" in login.text
    await _sign_in(h, "Bram")
    page = (await h.client.get("/console")).text
    assert "Open meldingen" in page
    assert "Aannemen" in page
    assert "10 min 00 s over" in page


async def test_the_console_shows_a_callback_time_and_repeated_contacts(h: Harness) -> None:
    await h.staff("Anna", languages=["en"])
    first = await h.report(callback_phone="06 55500011")
    again = await h.submit(callback_phone="06 55500011")  # the same customer again: one case
    assert again.status_code == 200
    when = "2026-01-05T14:30:00+00:00"  # 15:30 in Amsterdam
    r = await h.client.post(f"/v1/reports/{first['id']}/callback", json={"at": when}, headers=h.app)
    assert r.status_code == 200, r.text
    await _sign_in(h, "Anna")
    page = (await h.client.get("/console")).text
    assert "The customer asked to be called at 05-01 15:30." in page
    assert "The customer got in touch 2 times." in page
