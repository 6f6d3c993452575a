"""Hostile text, through the real paths to every place it can show up: SQL, HTML and script,
TwiML/XML injection, control characters, right-to-left overrides, emoji, mrkdwn mentions and
very long strings are stored verbatim, shown harmlessly (escaped for the destination, without
control or invisible direction characters) and cut where a channel limits length.

Where user text goes: a staff member's name reaches the customer's "accepted" SMS (first name),
other staff (spoken on a page call, an SMS reply, a chat message), the console, the accept-link
page and the customer's status page. A report's description and customer_ref, and a customer's
SMS, are stored and never sent to anyone. Fake Twilio, Vonage and Slack record exactly what we
send; pages are read as a browser would get them.
"""

from __future__ import annotations

import json
import re
from typing import Any
from xml.etree import ElementTree

import pytest
from sqlalchemy import select

from providers.base import Channel, OutboundPage
from providers.slack import sender as slack
from providers.twilio import twiml
from routing.report.models import Report
from tests.harness import SMS, VOICE, Harness
from tests.providers.test_vonage_webhooks import Vonage, vn
from tests.scenarios.test_slack import ANNA_CHAT, BRAM_CHAT, Slack, sl
from tests.scenarios.twilio_harness import ANNA, BRAM, CUSTOMER, SOS_NUMBER, Twilio, tw
from tests.web.test_console import _sign_in

__all__ = ["sl", "tw", "vn"]

# Staff names (at most 120 characters, as the API takes them).
NAMES = {
    "sql": "Robert'); DROP TABLE staff;--",
    "html": '<script>alert("x")</script><img src=x onerror=alert(1)>',
    "twiml": "Anna</Say><Dial>+31900123456</Dial><Say>",
    "control": "Anna\x07\x1b[2J\x0b\x0c\x7f\x85Bel\r\n0900-1234",
    "bidi": "Anna\u202egnp.exe\u202c \u2066x\u2069\u200f\u200b",
    "emoji": "👩\u200d💻Anna 🚨🇳🇱",
    "mention": "<!channel> <@U0BRAM> *Anna* <https://evil.test|klik>",
    "long": "Anna🚨" + "x" * 114,
}
# Control characters and invisible format characters (bidi embeddings, overrides, isolates,
# marks, zero-width spaces, word joiners, BOM): none may reach an outbound text or a page.
# A line break is allowed only where our own texts have one.
INVISIBLE = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff]"
)
GSM_7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_7_EXTENDED = set("^{}\\[~]|€\f")


def assert_plain(text: str, *, lines: int = 1) -> None:
    """No control or invisible character, and at most `lines` lines."""
    assert not INVISIBLE.findall(text), f"{INVISIBLE.findall(text)!r} in {text!r}"
    assert text.count("\n") < lines, f"a line break in {text!r}"


def segments(body: str) -> int:
    """How many SMS segments `body` takes: GSM-7 (160, or 153 per part) or UCS-2 (70, or 67)."""
    if set(body) <= GSM_7 | GSM_7_EXTENDED:
        units = len(body) + sum(ch in GSM_7_EXTENDED for ch in body)
        single, part = 160, 153
    else:
        units = len(body.encode("utf-16-le")) // 2
        single, part = 70, 67
    return 1 if units <= single else -(-units // part)


def visible_word(name: str) -> str:
    """The first word of `name` a reader must still see wherever the name is shown."""
    found = re.match(r"\W*(\w+)", name)
    assert found
    return found.group(1)


# --- stored verbatim ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(NAMES))
async def test_hostile_text_is_stored_and_read_back_verbatim(h: Harness, kind: str) -> None:
    hostile = NAMES[kind].replace("\r\n", "\n")  # JSON keeps it; only form posts normalise
    staff_id = await h.staff(hostile, "+31611111111")
    await h.chain(("voice", [hostile], 60), name=hostile)
    report = await h.report(description=hostile * 10, customer_ref=hostile[:64])

    staff = (await h.client.get("/v1/staff", headers=h.admin)).json()
    chains = (await h.client.get("/v1/chains", headers=h.admin)).json()
    read = await h.get(str(report["id"]))

    stripped = hostile.strip()  # request bodies strip outer whitespace
    assert [s["name"] for s in staff if s["id"] == staff_id] == [stripped]
    assert [c["name"] for c in chains] == [stripped]
    assert read["description"] == (hostile * 10).strip()
    assert read["customer_ref"] == hostile[:64].strip()
    async with h.container.db() as session:  # the table is still there, the text is data
        stored = await session.scalar(select(Report.description))
    assert stored == (hostile * 10).strip()
    await h.tick()
    [page] = h.sender.take()  # what reaches a provider is plain
    assert page.channel == VOICE
    assert not INVISIBLE.findall(page.staff_name)


@pytest.mark.parametrize("field", ["description", "customer_ref"])
async def test_text_a_database_cannot_hold_is_a_422_not_a_500(h: Harness, field: str) -> None:
    for bad in ('"a\\u0000b"', '"a\\ud800b"'):  # NUL; a lone surrogate (not UTF-8)
        body = f'{{"category": "fraud", "callback_phone": "0612345678", "{field}": {bad}}}'
        r = await h.client.post(
            "/v1/reports",
            content=body,
            headers={**h.app, "Content-Type": "application/json"},
        )
        assert r.status_code == 422, r.text
        assert r.json()["error"]["field"] == field


# --- never sent ---------------------------------------------------------------------------------


async def test_the_description_and_customer_ref_reach_no_page_and_no_text(h: Harness) -> None:
    await h.staff("Anna")
    await h.staff("Bram")
    await h.chain(("voice", ["Anna"], 60), ("sms", ["Bram"], 60))
    description = "Oplichter belde namens de bank, IBAN NL91ABNA0417164300 " + NAMES["twiml"]
    report = await h.report(description=description, customer_ref="klant-4471")
    await h.tick()
    await h.advance(60)
    pages = h.expect(("Anna", VOICE), ("Bram", SMS))
    await h.ack(str(report["id"]), "Bram")
    await h.tick()
    [accepted] = h.expect_texts((str(report["callback_phone"]), SMS))

    for sent in [*(p.text for p in pages), accepted.body]:
        for secret in ("Oplichter", "NL91", "Dial", "klant-4471"):
            assert secret not in sent


# --- sent by Twilio: the customer's SMS, a spoken page, an SMS reply ---------------------------


@pytest.mark.parametrize("kind", sorted(NAMES))
async def test_a_hostile_name_is_plain_text_in_sms_and_spoken_twiml(tw: Twilio, kind: str) -> None:
    name = NAMES[kind]
    await tw.h.staff(name, ANNA, languages=["en"])
    await tw.h.staff("Bram", BRAM, languages=["en"])
    await tw.h.chain(("voice", [name, "Bram"], 60))
    report = await tw.h.report(callback_phone="06 12345678")
    await tw.h.tick()
    anna = await tw.fake.expect_call(to=ANNA)
    bram = await tw.fake.expect_call(to=BRAM)
    await anna.answer()
    await anna.press("1")

    await bram.answer()  # the fake fails the test on TwiML that is not XML
    late = await tw.fake.send_sms(from_=BRAM, body="1", to=SOS_NUMBER)
    await tw.h.tick()
    await tw.fake.expect_participant(to=CUSTOMER)
    accepted = await tw.fake.expect_sms(to=CUSTOMER)

    taken = bram.heard[-1]
    assert taken.startswith("This report has already been accepted by "), taken
    assert bram.conference is None  # nothing injected: Bram was told, and hung up
    for said in (taken, late[0], accepted.body):
        assert_plain(said)
        assert visible_word(name) in said, said
    assert segments(accepted.body) <= 2, accepted.body
    assert accepted.body.startswith(f"SOS-melding {report['reference']}: ")
    assert len(taken.encode()) <= twiml.SAY_MAX_BYTES


@pytest.mark.parametrize("kind", ["control", "twiml", "bidi", "long"])
async def test_a_hostile_name_is_plain_text_in_vonage_talk(vn: Vonage, kind: str) -> None:
    name = NAMES[kind]
    await vn.h.staff(name, ANNA, languages=["en"])
    await vn.h.staff("Bram", BRAM, languages=["en"])
    await vn.h.chain(("voice", [name, "Bram"], 60))
    await vn.h.report(callback_phone="06 12345678")
    await vn.h.tick()
    anna = await vn.fake.expect_call(to=ANNA)
    bram = await vn.fake.expect_call(to=BRAM)
    await anna.answer()
    await anna.press("1")

    await bram.answer()
    await vn.h.tick()
    await vn.fake.expect_bridge_call(to=CUSTOMER)
    accepted = await vn.fake.expect_sms(to=CUSTOMER)

    taken = bram.heard[-1]
    assert "already been accepted by" in taken, taken
    for said in (taken, accepted.text):
        assert_plain(said)
        assert visible_word(name) in said, said


@pytest.mark.parametrize(
    "body",
    [
        "'; DROP TABLE reports; --",
        "</Message><Redirect>https://evil.test/</Redirect><Message>",
        "help\x00me\x07\x1b[31m \u202eknab\u202c",
        "Help 🚨 " + "x" * 1592,
    ],
    ids=["sql", "twiml", "control", "long"],
)
async def test_a_hostile_customer_sms_is_stored_and_never_echoed(tw: Twilio, body: str) -> None:
    await tw.h.staff("Anna", ANNA)
    await tw.h.chain(("sms", ["Anna"], 60))

    first = await tw.fake.send_sms(from_=CUSTOMER, body=body, to=SOS_NUMBER)
    more = await tw.fake.send_sms(from_=CUSTOMER, body=body, to=SOS_NUMBER)

    assert first == []  # a new report: the receipt comes from the outbox
    [added] = more
    assert_plain(added)
    async with tw.h.container.db() as session:
        report = await session.scalar(select(Report))
    assert report is not None
    typed = body.replace("\x00", "")[:1600]  # no database text holds a NUL
    assert report.description == f"{typed}\n{typed}".strip()[-4000:]
    await tw.h.tick()
    page = await tw.fake.expect_sms(to=ANNA)
    receipt = await tw.fake.expect_sms(to=CUSTOMER)
    for sent in (added, page.body, receipt.body):
        assert "DROP" not in sent
        assert "Redirect" not in sent
        assert "knab" not in sent
        assert "xxxxx" not in sent
        assert segments(sent) <= 3, sent


# --- sent to Slack ------------------------------------------------------------------------------


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def assert_harmless_mrkdwn(text: str) -> None:
    """Slack reads `<...>` as a mention, a channel ping or a link: none may come from a name."""
    assert_plain(text)
    assert "<" not in text
    assert ">" not in text


@pytest.mark.parametrize("kind", ["mention", "html", "control", "bidi", "long"])
async def test_a_hostile_name_notifies_nobody_in_slack(sl: Slack, kind: str) -> None:
    name = NAMES[kind]
    await sl.h.staff(name, ANNA, chat_id=ANNA_CHAT)
    await sl.h.staff("Bram", BRAM, chat_id=BRAM_CHAT)
    await sl.h.chain(("chat", [name, "Bram"], 60))
    report = await sl.h.report(callback_phone="06 23456789")
    await sl.h.tick()
    to_anna = sl.fake.expect_post(channel=ANNA_CHAT)
    to_bram = sl.fake.expect_post(channel=BRAM_CHAT)

    await sl.fake.click(to_anna, user=ANNA_CHAT)
    await sl.fake.click(to_bram, user=BRAM_CHAT)  # too late: told who has it

    update = sl.fake.expect_update(to_anna)
    told = sl.fake.expect_ephemeral(user=BRAM_CHAT)
    for text in [update.text, *_strings(update.blocks[1:]), told.text]:
        assert_harmless_mrkdwn(text)
    assert visible_word(name) in update.text
    assert visible_word(name) in told.text
    await sl.h.tick()
    [accepted] = sl.h.sender.expect_texts((str(report["callback_phone"]), SMS))
    assert_plain(accepted.body)


# --- shown in pages -----------------------------------------------------------------------------


def assert_harmless_html(page: str, name: str) -> None:
    """The name is in the page as text (escaped), with no control or direction character."""
    assert_plain(page, lines=page.count("\n") + 1)
    assert visible_word(name) in page
    assert "<script>alert" not in page
    assert "<img src=x" not in page
    assert "<Dial>" not in page


@pytest.mark.parametrize("kind", sorted(NAMES))
async def test_a_hostile_name_is_shown_as_text_in_console_ack_and_status_pages(
    h: Harness, kind: str
) -> None:
    name = NAMES[kind]
    await h.staff(name, languages=["en"])
    await h.staff("Bram", languages=["en"])
    await h.chain(("voice", [name], 60), ("sms", ["Bram"], 60))
    report = await h.report(callback_phone="06 12345678")
    await h.tick()
    await h.advance(60)
    [bram_sms] = [p for p in h.sender.take() if p.channel == SMS]
    await _sign_in(h, "Bram")
    paged = (await h.client.get("/console")).text  # "voice to <name>: sent"
    assert (await h.ack(str(report["id"]), name)).status_code == 200

    accepted = (await h.client.get("/console")).text  # "accepted by <name>"
    detail = (await h.client.get(f"/console/reports/{report['id']}")).text
    link = re.search(r"/ack/(\S+)$", bram_sms.text)
    assert link, bram_sms.text
    taken = (await h.client.get(f"/ack/{link.group(1)}")).text  # "<name> has it"
    token = str(report["status_url"]).rsplit("/", 1)[1]
    status = (await h.client.get(f"/status/{token}?lang=en")).text
    polled = (await h.client.get(f"/status/{token}.json?lang=en")).json()

    for page in (paged, accepted, detail, taken, status):
        assert_harmless_html(page, name)
    assert_plain(json.dumps(polled, ensure_ascii=False))
    assert visible_word(name) in polled["message"]
    await h.tick()
    h.expect_texts((str(report["callback_phone"]), SMS))


# --- the builders: a last line of defence ------------------------------------------------------


def test_twiml_is_xml_and_a_say_fits_twilio_whatever_the_text() -> None:
    text = "".join(NAMES.values()) * 40  # ~12,000 characters, every hostile kind

    for document in (
        twiml.say_and_hang_up(text=text, language="en"),
        twiml.ask_for_keypress(prompt=text, language="nl", action_url="https://sos.test/x"),
        twiml.sms_reply(text),
    ):
        root = ElementTree.fromstring(document)  # raises on anything XML cannot hold
        assert [e.tag for e in root.iter()] in (
            ["Response", "Say", "Hangup"],
            ["Response", "Gather", "Say", "Pause", "Say"],
            ["Response", "Message"],
        )
        for element in root.iter("Say"):
            assert len((element.text or "").encode()) <= twiml.SAY_MAX_BYTES
        for element in root.iter("Message"):
            assert len(element.text or "") <= twiml.MESSAGE_MAX


def test_a_chat_section_fits_slack_whatever_the_text() -> None:
    page = OutboundPage(1, Channel.CHAT, "U0ANNA", "Anna", "en", "K7Q4M2", "x" * 5000, "SOS")
    blocks = slack.page_blocks(page)
    assert all(len(t) <= slack.SECTION_MAX for t in _strings(blocks))
    assert slack.accepted_text(NAMES["mention"]).count("<") == 0
