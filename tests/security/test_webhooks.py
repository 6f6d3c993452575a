"""Every webhook of every provider, table-driven: the same signed request sent again (at once, and
a day later) changes nothing, and a forged one (no signature, the wrong key, a changed
parameter, another host or path) gets 403 and changes nothing. "Nothing" is the whole database:
every row of every table is compared before and after.

Twilio signs the URL and the form (no time: a replay a day later must be a no-op by itself);
Vonage signs the body with a JWT issued at a time (no URL: a body moved to another row's URL must
find nothing to do); Slack signs the body with a timestamp (no URL: one endpoint).

Tests that were there before (and still are): signature algorithms and vectors
(tests/providers/test_*_signature.py), a forged inbound SMS and duplicate page callbacks
(tests/scenarios/test_twilio.py), one report per SOS call replayed (tests/scenarios/
test_sos_line.py), a forged text status (tests/scenarios/test_customer_messages.py), a stale,
forged, unsigned or replayed Slack click (tests/scenarios/test_slack.py), a forged, tampered or
stale Vonage SMS and replayed Vonage status webhooks (tests/providers/test_vonage_webhooks.py).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from app.container import build, slack_config
from app.main import create_app
from app.settings import Settings, SlackSettings, TwilioSettings
from providers.fake import ScriptedSender
from providers.slack.client import SlackClient
from providers.slack.sender import SlackChat
from routing import guard
from routing.bridge.models import BridgeCall
from routing.clock import FakeClock
from routing.inbound import service as inbound
from routing.models import Base
from tests.fakes.slack import FakeSlack, slack_signature
from tests.fakes.vonage import (
    API_KEY,
    APPLICATION_ID,
    SIGNATURE_SECRET,
    compact,
    signed_headers,
    vonage_settings,
)
from tests.harness import SMS, Harness
from tests.scenarios.twilio_harness import ACCOUNT_SID, AUTH_TOKEN, SOS_NUMBER

PUBLIC = "https://sos.example.test"
ELSEWHERE = "https://sos.elsewhere.test"  # another host, e.g. someone else's Twilio app
BOT_TOKEN, SIGNING_SECRET = "xoxb-sos-router-test", "sos-router-test-signing-secret"
SLACK_API = "https://slack.test/api"
ANNA, BRAM, CUSTOMER = "+31611111111", "+31622222222", "+31612345678"
ANNA_CHAT = "U0ANNA"
FORM = "application/x-www-form-urlencoded"
DAY = timedelta(days=1)


# --- the service with all three providers' webhooks on ----------------------------------------


@dataclass
class Hooks:
    h: Harness
    slack: FakeSlack
    ids: dict[str, Any] = field(default_factory=dict)

    async def post(self, request: Signed) -> httpx.Response:
        return await self.h.client.post(request.path, content=request.body, headers=request.headers)

    async def snapshot(self) -> dict[str, list[str]]:
        """Every row of every table."""
        async with self.h.container.db() as session:
            return {
                table.name: sorted(repr(tuple(row)) for row in await session.execute(select(table)))
                for table in Base.metadata.sorted_tables
            }


@pytest.fixture
async def hooks(
    settings: Settings, clock: FakeClock, sender: ScriptedSender, clean_db: None
) -> AsyncIterator[Hooks]:
    del clean_db
    configured = settings.model_copy(
        update={
            "public_base_url": PUBLIC,
            "twilio": TwilioSettings.model_validate(
                {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "from_number": SOS_NUMBER}
            ),
            "vonage": vonage_settings(SOS_NUMBER),
            "slack": SlackSettings.model_validate(
                {"api_base": SLACK_API, "bot_token": BOT_TOKEN, "signing_secret": SIGNING_SECRET}
            ),
        }
    )
    fake = FakeSlack(BOT_TOKEN, SIGNING_SECRET, clock=clock, public_base_url=PUBLIC)
    http = httpx.AsyncClient(transport=fake.transport, base_url=SLACK_API)
    chat = SlackChat(SlackClient(slack_config(configured), http), guard=guard.scrub)
    # Webhooks of all three; pages and texts by voice and SMS go to the scripted sender.
    container = build(configured, clock=clock, senders=[chat, sender], raise_errors=True)
    app = create_app(container, run_engine=False)
    fake.app_transport = httpx.ASGITransport(app=app)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC)
    h = Harness(client, container, clock, sender)
    await h.setup()
    try:
        yield Hooks(h, fake)
        fake.assert_clean()
    finally:
        await client.aclose()
        await http.aclose()
        await container.close()


# --- what exists before the webhook arrives -----------------------------------------------------


async def page_calls(w: Hooks) -> None:
    """Calls to Anna and Bram for one report: the webhook is about Anna's."""
    await w.h.staff("Anna", ANNA, chat_id=ANNA_CHAT)
    await w.h.staff("Bram", BRAM)
    await w.h.chain(("voice", ["Anna", "Bram"], 60))
    report = await w.h.report()
    await w.h.tick()
    pages = {p.staff_name: p for p in w.h.sender.take()}
    sid = {page.page_id: f"FAKE{n}" for n, page in enumerate(w.h.sender.sent, 1)}
    anna, bram = pages["Anna"].page_id, pages["Bram"].page_id
    w.ids.update(page=anna, other=bram, sid=sid[anna], report=report["id"])


async def sms_page(w: Hooks) -> None:
    await w.h.staff("Anna", ANNA)
    await w.h.chain(("sms", ["Anna"], 60))
    report = await w.h.report()
    await w.h.tick()
    [page] = w.h.sender.take()
    w.ids.update(page=page.page_id, other=page.page_id + 1, sid="FAKE1", report=report["id"])


async def chat_page(w: Hooks) -> None:
    await w.h.staff("Anna", ANNA, chat_id=ANNA_CHAT)
    await w.h.chain(("chat", ["Anna"], 60))
    await w.h.report()
    await w.h.tick()
    message = w.slack.expect_post(channel=ANNA_CHAT)
    w.ids.update(interaction=w.slack.interaction(message, user=ANNA_CHAT), message=message)


async def accepted(w: Hooks) -> None:
    """Anna accepted: the bridge calls her and the customer, the customer gets an SMS."""
    await page_calls(w)
    async with w.h.container.db.begin() as session:  # as by an SMS reply or an accept link
        await inbound.accept_page(session, page_id=w.ids["page"], now=w.h.clock.now(), via="link")
    await w.h.tick()
    [text] = w.h.sender.expect_texts((CUSTOMER, SMS))
    async with w.h.container.db() as session:
        calls = {c.leg: c for c in await session.scalars(select(BridgeCall))}
    w.ids.update(
        call=calls["customer"].id,
        other=calls["staff"].id,
        call_sid=calls["customer"].external_id,
        message=text.message_id,
        other_message=text.message_id + 1,
        text_sid="FAKETEXT1",
    )


async def spoken_code(w: Hooks) -> None:
    """A verification code by call: a text that is not a page, spoken."""
    staff_id = await w.h.staff("Anna", ANNA)
    started = await w.h.client.post(
        f"/v1/staff/{staff_id}/verification", json={"channel": "voice"}, headers=w.h.admin
    )
    assert started.status_code == 202, started.text
    await w.h.tick()
    [text] = w.h.sender.take_texts()
    w.ids.update(message=text.message_id, other_message=text.message_id + 1, text_sid="FAKETEXT1")


async def staff_only(w: Hooks) -> None:
    await w.h.staff("Anna", ANNA)
    await w.h.chain(("voice", ["Anna"], 60))
    w.ids.update(call_sid="CA" + "1" * 32)


async def sos_call(w: Hooks) -> None:
    """A customer called the SOS line and chose a category: a report, holding in its room."""
    await staff_only(w)
    for path, digits in (("/webhooks/twilio/voice", None), (CATEGORY, "1")):
        form = {"CallSid": w.ids["call_sid"], "From": CUSTOMER, "To": SOS_NUMBER}
        answered = await w.post(twilio(path, form | ({"Digits": digits} if digits else {})))
        assert answered.status_code == 200, answered.text
    await w.h.tick()
    w.h.sender.take()
    w.h.sender.take_texts()  # the receipt
    async with w.h.container.db() as session:
        from routing.report.models import Report

        w.ids.update(report=await session.scalar(select(Report.id)))


CATEGORY = "/webhooks/twilio/voice/category?lang=nl&try=1"


# --- signed requests ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Signed:
    path: str
    body: bytes
    headers: dict[str, str]


def twilio(
    path: str, form: dict[str, str], *, base: str = PUBLIC, token: str = AUTH_TOKEN
) -> Signed:
    form = {"AccountSid": ACCOUNT_SID, **form}
    signature = RequestValidator(token).compute_signature(base + path, form)
    return Signed(
        path, urlencode(form).encode(), {"X-Twilio-Signature": signature, "Content-Type": FORM}
    )


def vonage(
    path: str, payload: dict[str, Any], *, at: datetime, secret: str = SIGNATURE_SECRET
) -> Signed:
    body = compact(payload)
    headers = signed_headers(
        body, secret=secret, issued_at=at, api_key=API_KEY, application_id=APPLICATION_ID
    )
    return Signed(path, body, headers)


def slack(body: bytes, *, at: datetime, secret: str = SIGNING_SECRET) -> Signed:
    timestamp = str(int(at.timestamp()))
    headers = {
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": slack_signature(secret, timestamp, body),
        "Content-Type": FORM,
    }
    return Signed("/webhooks/slack/interactive", body, headers)


@dataclass(frozen=True)
class Hook:
    """One webhook endpoint: what must exist first, the path (`{page}`, `{call}`, `{message}`,
    `{report}` from the staged ids), what the provider posts, and what it answers."""

    provider: str
    path: str
    stage: Callable[[Hooks], Awaitable[None]]
    content: Callable[[dict[str, Any]], dict[str, Any]]
    status: int
    changes: bool  # whether the first delivery changes the database

    def sign(
        self, ids: dict[str, Any], now: datetime, *, key: str | None = None, base: str = PUBLIC
    ) -> Signed:
        path = self.path.format(**ids)
        content = self.content(ids)
        if self.provider == "twilio":
            return twilio(path, content, base=base, token=key or AUTH_TOKEN)
        if self.provider == "vonage":
            return vonage(path, content, at=now, secret=key or SIGNATURE_SECRET)
        return slack(ids["interaction"].body, at=now, secret=key or SIGNING_SECRET)

    def __str__(self) -> str:
        return f"{self.provider} {self.path.split('?')[0]}"


def call(status: str = "in-progress", **more: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda ids: {"CallSid": ids["sid"], "CallStatus": status, "From": SOS_NUMBER, **more}


HOOKS = [
    Hook("twilio", "/webhooks/twilio/pages/{page}/voice", page_calls, call(), 200, False),
    Hook("twilio", "/webhooks/twilio/pages/{page}/digits", page_calls, call(Digits="1"), 200, True),
    Hook(
        "twilio",
        "/webhooks/twilio/pages/{page}/call-status",
        page_calls,
        call("no-answer"),
        204,
        True,
    ),
    Hook(
        "twilio",
        "/webhooks/twilio/pages/{page}/amd",
        page_calls,
        call(AnsweredBy="machine_end_beep"),
        204,
        True,
    ),
    Hook(
        "twilio",
        "/webhooks/twilio/pages/{page}/sms-status",
        sms_page,
        lambda ids: {"MessageSid": ids["sid"], "MessageStatus": "delivered"},
        204,
        True,
    ),
    Hook(
        "twilio",
        "/webhooks/twilio/rooms/{report}",
        sos_call,
        lambda ids: {"StatusCallbackEvent": "participant-leave", "CallSid": ids["call_sid"]},
        204,
        True,
    ),
    Hook(
        "twilio",
        "/webhooks/twilio/sms",
        staff_only,
        lambda _: {
            "MessageSid": "SM" + "2" * 32,
            "From": CUSTOMER,
            "To": SOS_NUMBER,
            "Body": "help",
        },
        200,
        True,
    ),
    Hook(
        "twilio",
        "/webhooks/twilio/voice",
        staff_only,
        lambda ids: {"CallSid": ids["call_sid"], "From": CUSTOMER, "To": SOS_NUMBER},
        200,
        True,
    ),
    Hook(
        "twilio",
        "/webhooks/twilio/voice/language?try=1",
        staff_only,
        lambda ids: {"CallSid": ids["call_sid"], "From": CUSTOMER, "Digits": "2"},
        200,
        False,
    ),
    Hook(
        "twilio",
        CATEGORY,
        staff_only,
        lambda ids: {"CallSid": ids["call_sid"], "From": CUSTOMER, "Digits": "1"},
        200,
        True,
    ),
    Hook(
        "twilio",
        "/webhooks/twilio/voice/hold?lang=nl",
        sos_call,
        lambda ids: {"CallSid": ids["call_sid"], "From": CUSTOMER},
        200,
        False,
    ),
    Hook(
        "twilio",
        "/webhooks/twilio/bridge/{call}/status",
        accepted,
        lambda ids: {"CallSid": ids["call_sid"], "CallStatus": "no-answer"},
        204,
        True,
    ),
    Hook(
        "twilio",
        "/webhooks/twilio/message-status?message={message}",
        accepted,
        lambda ids: {"MessageSid": ids["text_sid"], "MessageStatus": "delivered"},
        204,
        True,
    ),
    Hook(
        "vonage",
        "/webhooks/vonage/pages/{page}/answer",
        page_calls,
        lambda ids: {"uuid": ids["sid"], "conversation_uuid": "CON-1", "to": ANNA[1:]},
        200,
        False,
    ),
    Hook(
        "vonage",
        "/webhooks/vonage/pages/{page}/input",
        page_calls,
        lambda ids: {"uuid": ids["sid"], "dtmf": {"digits": "1", "timed_out": False}},
        200,
        True,
    ),
    Hook(
        "vonage",
        "/webhooks/vonage/pages/{page}/event",
        page_calls,
        lambda ids: {"uuid": ids["sid"], "status": "unanswered"},
        204,
        True,
    ),
    Hook(
        "vonage",
        "/webhooks/vonage/pages/{page}/sms-status",
        sms_page,
        lambda ids: {"message_uuid": ids["sid"], "status": "delivered"},
        204,
        True,
    ),
    Hook(
        "vonage",
        "/webhooks/vonage/sms",
        staff_only,
        lambda _: {
            "channel": "sms",
            "message_uuid": "aaaaaaaa-0000-4000-8000-000000000001",
            "from": CUSTOMER[1:],
            "to": SOS_NUMBER[1:],
            "text": "help",
            "message_type": "text",
        },
        204,
        True,
    ),
    Hook(
        "vonage",
        "/webhooks/vonage/texts/{message}/sms-status",
        accepted,
        lambda ids: {"message_uuid": ids["text_sid"], "status": "delivered"},
        204,
        True,
    ),
    Hook(
        "vonage",
        "/webhooks/vonage/texts/{message}/call-event",
        spoken_code,
        lambda ids: {"uuid": ids["text_sid"], "status": "completed"},
        204,
        True,
    ),
    Hook(
        "vonage",
        "/webhooks/vonage/bridge/{call}/event",
        accepted,
        lambda ids: {"uuid": ids["call_sid"], "status": "answered"},
        204,
        True,
    ),
    Hook("slack", "/webhooks/slack/interactive", chat_page, lambda _: {}, 200, True),
]


async def staged(w: Hooks, hook: Hook) -> dict[str, Any]:
    await hook.stage(w)
    return w.ids


# --- replays ------------------------------------------------------------------------------------


@pytest.mark.parametrize("hook", HOOKS, ids=str)
async def test_the_same_signed_webhook_again_changes_nothing(hooks: Hooks, hook: Hook) -> None:
    ids = await staged(hooks, hook)
    before = await hooks.snapshot()
    request = hook.sign(ids, hooks.h.clock.now())

    first = await hooks.post(request)
    if hook.provider == "slack":
        hooks.slack.expect_update(ids["message"])  # "Accepted by Anna": once
    after_first = await hooks.snapshot()
    hooks.h.clock.advance(1)  # a retry comes a moment later
    again = await hooks.post(request)
    after_again = await hooks.snapshot()
    hooks.h.clock.advance(DAY.total_seconds())
    late = await hooks.post(request)

    assert first.status_code == hook.status, first.text
    assert (after_first != before) == hook.changes
    assert again.status_code == hook.status, again.text
    assert after_again == after_first
    # Twilio signs no time: a day later is a no-op by itself. Vonage and Slack refuse it as stale.
    assert late.status_code == (hook.status if hook.provider == "twilio" else 403), late.text
    assert await hooks.snapshot() == after_first


# --- forgeries ----------------------------------------------------------------------------------


def unsigned(hook: Hook, ids: dict[str, Any], now: datetime) -> Signed:
    signed = hook.sign(ids, now)
    kept = {k: v for k, v in signed.headers.items() if k == "Content-Type"}
    return replace(signed, headers=kept)


def wrong_key(hook: Hook, ids: dict[str, Any], now: datetime) -> Signed:
    return hook.sign(ids, now, key="not-the-key-0123456789abcdef0123456789abcdef")


def changed(hook: Hook, ids: dict[str, Any], now: datetime) -> Signed:
    """Signed, then one parameter changed (the first value of the body)."""
    signed = hook.sign(ids, now)
    if hook.provider == "vonage":
        payload = json.loads(signed.body)
        key = next(k for k in payload if k not in ("channel",))
        payload[key] = "changed"
        return replace(signed, body=compact(payload))
    if hook.provider == "slack":
        return replace(signed, body=signed.body.replace(ANNA_CHAT.encode(), b"U0MALLORY"))
    form = dict(parse_qsl(signed.body.decode()))
    key = next(k for k in form if k != "AccountSid")
    return replace(signed, body=urlencode({**form, key: "changed"}).encode())


def other_host(hook: Hook, ids: dict[str, Any], now: datetime) -> Signed:
    """Signed for another host, and arriving with that host in `Host` and `X-Forwarded-*` (the
    URL checked is SOS_PUBLIC_BASE_URL's, never the request's)."""
    signed = hook.sign(ids, now, base=ELSEWHERE)
    host = ELSEWHERE.removeprefix("https://")
    forwarded = {"Host": host, "X-Forwarded-Host": host, "X-Forwarded-Proto": "https"}
    return replace(signed, headers={**signed.headers, **forwarded})


FORGERIES = {"unsigned": unsigned, "wrong key": wrong_key, "changed": changed}
TWILIO_FORGERIES = {**FORGERIES, "other host": other_host}


@pytest.mark.parametrize(
    ("hook", "forgery"),
    [
        (hook, forgery)
        for hook in HOOKS
        for forgery in (TWILIO_FORGERIES if hook.provider == "twilio" else FORGERIES)
    ],
    ids=lambda value: value if isinstance(value, str) else str(value),
)
async def test_a_forged_webhook_is_refused_and_changes_nothing(
    hooks: Hooks, hook: Hook, forgery: str
) -> None:
    ids = await staged(hooks, hook)
    before = await hooks.snapshot()
    forged = (TWILIO_FORGERIES | FORGERIES)[forgery](hook, ids, hooks.h.clock.now())

    refused = await hooks.post(forged)

    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["code"] == "forbidden"
    assert await hooks.snapshot() == before


MOVABLE = [hook for hook in HOOKS if "{" in hook.path and hook.provider != "slack"]
# Where a moved Vonage body would act (accept a page, settle a bridge call), it is refused.
REFUSED_WHEN_MOVED = {"/webhooks/vonage/pages/{page}/input", "/webhooks/vonage/bridge/{call}/event"}


@pytest.mark.parametrize("hook", MOVABLE, ids=str)
async def test_a_webhook_moved_to_another_url_changes_nothing(hooks: Hooks, hook: Hook) -> None:
    """Signed for one page, call, text or report and posted to another's URL. Twilio's signature
    covers the URL: 403. Vonage's does not: the request must find nothing to do there (the call
    or message it names is not that row's), and where it would act it is refused."""
    ids = await staged(hooks, hook)
    before = await hooks.snapshot()
    signed = hook.sign(ids, hooks.h.clock.now())
    other = ids.get("other", 999_999)  # another row of the same kind, or none at all
    message = ids.get("other_message", other)
    elsewhere = {**ids, "page": other, "call": other, "message": message, "report": "elsewhere"}
    moved = replace(signed, path=hook.path.format(**elsewhere))

    answer = await hooks.post(moved)

    if hook.provider == "twilio" or hook.path in REFUSED_WHEN_MOVED:
        assert answer.status_code == 403, answer.text
    else:
        assert answer.status_code in (200, 204), answer.text
    assert await hooks.snapshot() == before
