"""Chat pages on Slack end to end: the real adapter posts to a fake Slack, people click Accept in
it, and the fake posts signed interactions into the app. Voice and SMS stay on the scripted
`sender`; the fake fails the test on any message, update or ephemeral line nobody expected."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from app.container import build, default_senders
from app.main import create_app
from app.settings import Settings, SlackSettings
from providers.base import Channel
from providers.fake import ScriptedSender
from providers.simulated import SimulatedPhones
from providers.slack.sender import SlackChat
from routing.audit.models import AuditEvent
from routing.clock import FakeClock
from tests.fakes.slack import FakeSlack, Message
from tests.harness import SMS, Harness

BOT_TOKEN = "xoxb-sos-router-test"
SIGNING_SECRET = "sos-router-test-signing-secret"
API_BASE = "https://slack.test/api"
PUBLIC = "https://sos.example.test"
ANNA, BRAM, EVE = "+31611111111", "+31622222222", "+31633333333"
ANNA_CHAT, BRAM_CHAT, EVE_CHAT, STRANGER_CHAT = "U0ANNA", "U0BRAM", "U0EVE", "U0STRANGER"
CUSTOMER = "06 23456789"
DESCRIPTION = "Someone emptied my savings account from Lisbon"


def slack_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "public_base_url": PUBLIC,
            "slack": SlackSettings.model_validate(
                {
                    "api_base": API_BASE,
                    "bot_token": BOT_TOKEN,
                    "signing_secret": SIGNING_SECRET,
                }
            ),
        }
    )


@dataclass
class Slack:
    h: Harness
    fake: FakeSlack

    async def chat_then_sms(self, **report: Any) -> dict[str, Any]:
        """Anna by chat, then Bram by SMS; one report submitted and its first page sent."""
        await self.h.staff("Anna", ANNA, chat_id=ANNA_CHAT)
        await self.h.staff("Bram", BRAM, languages=["en"], chat_id=BRAM_CHAT)
        await self.h.chain(("chat", ["Anna"], 60), ("sms", ["Bram"], 60))
        created = await self.h.report(callback_phone=CUSTOMER, **report)
        await self.h.tick()
        return created

    async def acknowledgements(self) -> int:
        return await self.h.count(AuditEvent, AuditEvent.type == "acknowledged")


@pytest.fixture
async def sl(
    settings: Settings, clock: FakeClock, sender: ScriptedSender, clean_db: None
) -> AsyncIterator[Slack]:
    del clean_db
    configured = slack_settings(settings)
    fake = FakeSlack(BOT_TOKEN, SIGNING_SECRET, clock=clock, public_base_url=PUBLIC)
    http = httpx.AsyncClient(transport=fake.transport, base_url=API_BASE)
    # The container's own wiring for Slack; voice and SMS go to the scripted sender.
    chat = [s for s in default_senders(configured, slack_http=http) if isinstance(s, SlackChat)]
    container = build(configured, clock=clock, senders=[*chat, sender], raise_errors=True)
    app = create_app(container, run_engine=False)
    fake.app_transport = httpx.ASGITransport(app=app)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC)
    h = Harness(client, container, clock, sender)
    await h.setup()
    try:
        yield Slack(h, fake)
        fake.assert_clean()
    finally:
        await client.aclose()
        await http.aclose()
        await container.close()


def details(report: dict[str, Any]) -> str:
    return "\n".join(e["detail"] for e in report["timeline"])


def has_button(message: Message) -> bool:
    try:
        message.button()
    except AssertionError:
        return False
    return True


async def test_a_click_accepts_and_the_message_says_who(sl: Slack) -> None:
    report = await sl.chat_then_sms()
    message = sl.fake.expect_post(channel=ANNA_CHAT)
    assert message.channel_id == "D0ANNA"  # Slack answers with the DM channel

    answer = await sl.fake.click(message, user=ANNA_CHAT)

    assert answer.status_code == 200
    update = sl.fake.expect_update(message)
    assert update.text == "Accepted by Anna"
    assert not has_button(message)  # nobody can click it again
    assert str(report["reference"]) in message.shown()
    seen = await sl.h.get(str(report["id"]))
    assert seen["acknowledged_by"]["name"] == "Anna"
    assert "accepted by Anna (chat button)" in details(seen)
    await sl.h.tick()
    assert {c.leg for c in sl.h.sender.room_calls} == {"staff", "customer"}  # the voice bridge
    sl.h.expect_accepted_text(report, by="Anna")
    await sl.h.advance(120)  # no SMS to Bram: the chain stopped at the click


async def test_the_message_shows_reference_and_category_never_customer_data(sl: Slack) -> None:
    report = await sl.chat_then_sms(description=DESCRIPTION, customer_ref="NL91ABNA0417164300")
    message = sl.fake.expect_post(channel=ANNA_CHAT)

    shown = message.shown()
    assert str(report["reference"]) in shown
    assert "fraud" in shown
    assert message.button()["value"].isdigit()  # our page id, nothing else
    for secret in ("23456789", "Lisbon", "savings", "NL91ABNA0417164300"):
        assert secret not in shown
        assert secret not in str(message.blocks)


async def test_a_late_clicker_is_told_who_has_it(sl: Slack) -> None:
    await sl.h.staff("Anna", ANNA, chat_id=ANNA_CHAT)
    await sl.h.staff("Bram", BRAM, chat_id=BRAM_CHAT)
    await sl.h.chain(("chat", ["Anna", "Bram"], 60))
    report = await sl.h.report()
    await sl.h.tick()
    anna = sl.fake.expect_post(channel=ANNA_CHAT)
    bram = sl.fake.expect_post(channel=BRAM_CHAT)

    await sl.fake.click(anna, user=ANNA_CHAT)
    sl.fake.expect_update(anna)
    late = await sl.fake.click(bram, user=BRAM_CHAT)

    assert late.status_code == 200
    told = sl.fake.expect_ephemeral(user=BRAM_CHAT)
    assert told.text == "Anna already has it"
    assert told.channel == bram.channel_id
    seen = await sl.h.get(str(report["id"]))
    assert seen["acknowledged_by"]["name"] == "Anna"
    assert await sl.acknowledgements() == 1


async def test_a_colleague_on_the_rota_may_take_a_page_meant_for_someone_else(sl: Slack) -> None:
    report = await sl.chat_then_sms()
    await sl.h.staff("Eve", EVE, chat_id=EVE_CHAT)
    message = sl.fake.expect_post(channel=ANNA_CHAT)

    await sl.fake.click(message, user=EVE_CHAT)  # e.g. a post in a shared channel

    assert sl.fake.expect_update(message).text == "Accepted by Eve"
    seen = await sl.h.get(str(report["id"]))
    assert seen["acknowledged_by"]["name"] == "Eve"
    await sl.h.tick()
    sl.h.expect_accepted_text(report, by="Eve")
    await sl.h.advance(120)


async def test_a_chat_user_who_is_not_on_the_rota_changes_nothing(sl: Slack) -> None:
    report = await sl.chat_then_sms()
    message = sl.fake.expect_post(channel=ANNA_CHAT)

    answer = await sl.fake.click(message, user=STRANGER_CHAT)

    assert answer.status_code == 200
    assert "not on the rota" in sl.fake.expect_ephemeral(user=STRANGER_CHAT).text
    assert has_button(message)
    assert (await sl.h.get(str(report["id"])))["acknowledged_at"] is None
    await sl.fake.click(message, user=ANNA_CHAT)  # Anna still can
    sl.fake.expect_update(message)


async def test_a_stale_or_forged_click_is_refused_and_changes_nothing(sl: Slack) -> None:
    report = await sl.chat_then_sms()
    message = sl.fake.expect_post(channel=ANNA_CHAT)
    now = int(sl.h.clock.now().timestamp())

    stale = await sl.fake.click(message, user=ANNA_CHAT, timestamp=now - 301)
    future = await sl.fake.click(message, user=ANNA_CHAT, timestamp=now + 301)
    forged = await sl.fake.click(message, user=ANNA_CHAT, bad_signature=True)
    unsigned = await sl.h.client.post(
        "/webhooks/slack/interactive", content=sl.fake.interaction(message, user=ANNA_CHAT).body
    )

    assert [stale.status_code, future.status_code, forged.status_code] == [403, 403, 403]
    assert "too old" in stale.json()["error"]["message"]
    assert forged.json()["error"]["code"] == "forbidden"
    assert unsigned.status_code == 403
    assert (await sl.h.get(str(report["id"])))["acknowledged_at"] is None
    assert await sl.h.count(AuditEvent, AuditEvent.type == "acknowledged") == 0
    assert has_button(message)  # no update, no ephemeral line (the fake would fail)
    sl.h.expect_none()


async def test_a_replayed_click_changes_nothing(sl: Slack) -> None:
    report = await sl.chat_then_sms()
    message = sl.fake.expect_post(channel=ANNA_CHAT)
    click = sl.fake.interaction(message, user=ANNA_CHAT)
    await sl.fake.deliver(click)
    sl.fake.expect_update(message)
    events = len((await sl.h.get(str(report["id"])))["timeline"])
    everywhere = await sl.h.count(AuditEvent)

    replayed = await sl.fake.deliver(click)  # the same request again
    sl.h.clock.advance(10)
    redelivered = await sl.fake.deliver(click)  # the same click, signed again later

    assert replayed.status_code == redelivered.status_code == 200
    assert len((await sl.h.get(str(report["id"])))["timeline"]) == events
    assert await sl.acknowledgements() == 1
    assert await sl.h.count(AuditEvent) == everywhere  # nothing recorded anywhere else either


async def test_channel_not_found_moves_on_to_the_next_step_at_once(sl: Slack) -> None:
    sl.fake.fail_next("channel_not_found")
    report = await sl.chat_then_sms()

    await sl.h.tick()  # the fake clock has not moved: the fallback did not wait out 60 s

    sl.h.expect(("Bram", SMS))
    seen = await sl.h.get(str(report["id"]))
    assert "channel_not_found" in details(seen)


async def test_a_rate_limited_post_is_retried_after_the_pause_slack_asks_for(sl: Slack) -> None:
    sl.fake.fail_next(status=429, retry_after=3)
    await sl.chat_then_sms()
    assert not sl.fake.messages

    await sl.h.advance(3)

    sl.fake.expect_post(channel=ANNA_CHAT)
    sl.h.expect_none()


async def test_slack_settings_put_chat_pages_on_slack_before_the_simulated_phones(
    settings: Settings,
) -> None:
    senders = default_senders(slack_settings(settings))
    assert [type(s) for s in senders] == [SlackChat, SimulatedPhones]
    container = build(slack_settings(settings))
    try:
        assert isinstance(container.registry.sender_for(Channel.CHAT), SlackChat)
        assert isinstance(container.registry.sender_for(Channel.VOICE), SimulatedPhones)
    finally:
        await container.close()
        for sender in [*senders, *container.senders]:
            if isinstance(sender, SlackChat):
                await sender.client.http.aclose()


async def test_without_slack_the_interaction_url_does_not_exist(client: httpx.AsyncClient) -> None:
    answer = await client.post("/webhooks/slack/interactive", content=b"payload=%7B%7D")
    assert answer.status_code == 404
