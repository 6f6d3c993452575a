"""Slack answers sorted into retry, move on, or reconcile first; the interaction payload parser."""

import json
from urllib.parse import urlencode

import httpx
import pytest

from providers.base import (
    Channel,
    OutboundPage,
    OutboundText,
    OutcomeUnknownError,
    PermanentProviderError,
    TemporaryProviderError,
)
from providers.slack import client, webhooks
from providers.slack.client import SlackClient, SlackConfig
from providers.slack.sender import SlackChat

TOKEN = "xoxb-test"
PAGE = OutboundPage(
    page_id=7,
    channel=Channel.CHAT,
    to="U0ANNA",
    staff_name="Anna",
    language="en",
    reference="K7Q4M2",
    category="account_takeover",
    text="SOS account takeover, report K7Q4M2. https://sos.example.test/ack/abc",
)


def chat(handler: httpx.MockTransport) -> SlackChat:
    http = httpx.AsyncClient(transport=handler, base_url="https://slack.test/api")
    return SlackChat(SlackClient(SlackConfig(TOKEN, "https://slack.test/api"), http))


def answering(response: httpx.Response) -> httpx.MockTransport:
    return httpx.MockTransport(lambda _request: response)


async def test_a_page_is_a_json_post_with_the_token_and_an_accept_button() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"ok": True, "channel": "D0ANNA", "ts": "1.000100"})

    result = await chat(httpx.MockTransport(handler)).send(PAGE)

    assert result.external_id == "D0ANNA:1.000100"
    assert result.provider == "slack"
    (request,) = seen
    assert str(request.url) == "https://slack.test/api/chat.postMessage"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    body = json.loads(request.content)
    assert body["channel"] == "U0ANNA"
    assert body["text"] == PAGE.text
    section, actions = body["blocks"]
    assert "account takeover" in section["text"]["text"]
    assert "`K7Q4M2`" in section["text"]["text"]
    (button,) = actions["elements"]
    assert button == {
        "type": "button",
        "action_id": "accept_page",
        "text": {"type": "plain_text", "text": "Accept"},
        "style": "primary",
        "value": "7",
    }


async def test_a_text_that_is_not_a_page_is_a_plain_message_without_a_button() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"ok": True, "channel": "C0OPS", "ts": "2.000200"})

    alert = OutboundText(3, Channel.CHAT, "C0OPS", "SOS-router audit: 1 page stuck.", "en")
    result = await chat(httpx.MockTransport(handler)).send_text(alert)

    assert result.external_id == "C0OPS:2.000200"
    (request,) = seen
    body = json.loads(request.content)
    assert body["channel"] == "C0OPS"
    assert body["text"] == alert.body
    assert [block["type"] for block in body["blocks"]] == ["section"]


async def test_rate_limits_are_retried_after_the_pause_slack_asks_for() -> None:
    limited = answering(httpx.Response(429, headers={"Retry-After": "3"}))
    with pytest.raises(TemporaryProviderError) as caught:
        await chat(limited).send(PAGE)
    assert caught.value.retry_after == 3.0
    with pytest.raises(TemporaryProviderError):
        await chat(answering(httpx.Response(200, json={"ok": False, "error": "ratelimited"}))).send(
            PAGE
        )


@pytest.mark.parametrize(
    "error",
    ["channel_not_found", "not_in_channel", "invalid_auth", "account_inactive", "is_archived"],
)
async def test_rejections_move_on(error: str) -> None:
    refused = answering(httpx.Response(200, json={"ok": False, "error": error}))
    with pytest.raises(PermanentProviderError) as caught:
        await chat(refused).send(PAGE)
    assert caught.value.code == error
    assert error in caught.value.detail


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(500),
        httpx.Response(503, text="<html>"),
        httpx.Response(200, json={"ok": False, "error": "internal_error"}),
        httpx.Response(200, text="<html>proxy</html>"),
    ],
    ids=["500", "503", "internal_error", "not-json"],
)
async def test_server_trouble_leaves_the_outcome_unknown(response: httpx.Response) -> None:
    with pytest.raises(OutcomeUnknownError):
        await chat(answering(response)).send(PAGE)


def test_a_connection_that_never_opened_is_safe_to_retry() -> None:
    request = httpx.Request("POST", "https://slack.test/api/chat.postMessage")
    assert isinstance(
        client.from_transport(httpx.ConnectError("refused", request=request)),
        TemporaryProviderError,
    )
    assert isinstance(
        client.from_transport(httpx.ReadTimeout("slow", request=request)), OutcomeUnknownError
    )


def form(payload: object) -> bytes:
    return urlencode({"payload": json.dumps(payload)}).encode()


CLICK = {
    "type": "block_actions",
    "user": {"id": "U0ANNA"},
    "channel": {"id": "D0ANNA"},
    "message": {"ts": "1.000100"},
    "response_url": "https://hooks.slack.test/x",
    "actions": [{"action_id": "accept_page", "value": "7", "action_ts": "2.000200"}],
}


def test_an_accept_click_is_read_into_plain_values() -> None:
    click = webhooks.accept_click(form(CLICK))
    assert click == webhooks.AcceptClick(
        user_id="U0ANNA",
        page_id=7,
        channel_id="D0ANNA",
        message_ts="1.000100",
        action_ts="2.000200",
        response_url="https://hooks.slack.test/x",
    )
    assert click.provider_id == "slack:U0ANNA:2.000200"


@pytest.mark.parametrize(
    "payload",
    [
        {**CLICK, "type": "view_submission"},
        {**CLICK, "actions": [{**CLICK["actions"][0], "action_id": "other"}]},  # type: ignore[index]
        {**CLICK, "actions": [{**CLICK["actions"][0], "value": "7; drop"}]},  # type: ignore[index]
        {**CLICK, "actions": [{**CLICK["actions"][0], "value": "0"}]},  # type: ignore[index]
        {**CLICK, "actions": []},
    ],
    ids=["other-type", "other-action", "bad-value", "zero", "no-action"],
)
def test_other_interactions_mean_nothing(payload: object) -> None:
    assert webhooks.accept_click(form(payload)) is None


@pytest.mark.parametrize(
    "body",
    [b"", b"payload=not-json", form([1, 2]), form({**CLICK, "user": {}})],
    ids=["empty", "not-json", "not-an-object", "no-user"],
)
def test_what_is_not_a_payload_is_refused(body: bytes) -> None:
    with pytest.raises(ValueError, match=r".+"):
        webhooks.accept_click(body)
