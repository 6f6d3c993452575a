"""A stateful, in-process fake of Slack's Web API and of the people who click in it (GoAlert's
mockslack, in the style of `tests/fakes/twilio.py`).

Web API side: `FakeSlack.transport` (an `httpx.MockTransport`) serves `chat.postMessage`,
`chat.update` and `chat.postEphemeral`. Every request must be a JSON POST with the bot token as a
Bearer header; a post to a user id lands in that user's DM channel (`U…` → `D…`), as on Slack.
`fail_next("channel_not_found")` answers the next post with `{"ok": false, "error": ...}`,
`fail_next(status=429, retry_after=3)` with HTTP 429.

Clicking side: `click(message, user=...)` presses the message's Accept button as Slack user
`user`: a `block_actions` payload, form-encoded, signed with the signing secret (computed here by
hand, independently of the code under test) at the fake clock's time, and posted into the app
through `app_transport`. `interaction()` + `deliver()` split that, for replays, stale timestamps
and forged signatures.

Oracle: `assert_clean()` fails on any request the fake had to refuse, and on any message, update
or ephemeral line the test did not take with `expect_post` / `expect_update` / `expect_ephemeral`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar
from urllib.parse import urlencode

import httpx

from routing.clock import Clock, SystemClock

INTERACTIVE_PATH = "/webhooks/slack/interactive"
BLOCK_TYPES = frozenset({"section", "actions", "context", "divider", "header"})
MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_BUTTON_TEXT = 75


class _Recorded(Protocol):
    taken: bool


T = TypeVar("T", bound=_Recorded)


@dataclass
class Message:
    """A message the app posted; `text` and `blocks` follow `chat.update`s."""

    channel: str  # as the app asked (a user or channel id)
    channel_id: str  # as Slack answered
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    taken: bool = False

    def shown(self) -> str:
        """Everything a reader (or a notification) sees: the text and every text in the blocks."""
        return "\n".join([self.text, *_texts(self.blocks)])

    def button(self, action_id: str = "accept_page") -> dict[str, Any]:
        for block in self.blocks:
            for element in block.get("elements", []) if block.get("type") == "actions" else []:
                if element.get("type") == "button" and element.get("action_id") == action_id:
                    return dict(element)
        raise AssertionError(f"no {action_id!r} button in {self!r}")

    def __repr__(self) -> str:
        return f"<message {self.channel_id}:{self.ts} to {self.channel}: {self.text!r}>"


@dataclass
class Update:
    message: Message
    text: str
    blocks: list[dict[str, Any]]
    taken: bool = False

    def __repr__(self) -> str:
        return f"<update of {self.message.channel_id}:{self.message.ts}: {self.text!r}>"


@dataclass
class Ephemeral:
    channel: str
    user: str
    text: str
    taken: bool = False

    def __repr__(self) -> str:
        return f"<ephemeral to {self.user} in {self.channel}: {self.text!r}>"


@dataclass(frozen=True)
class Interaction:
    """A click as Slack would post it (the body is what gets signed)."""

    body: bytes
    payload: dict[str, Any]


@dataclass(frozen=True)
class Fault:
    error: str = ""
    status: int = 200
    retry_after: int | None = None


def slack_signature(secret: str, timestamp: str, body: bytes) -> str:
    """The documented algorithm, by hand: `v0=` + hex HMAC-SHA256 of `v0:{ts}:{body}`."""
    message = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


@dataclass
class FakeSlack:
    bot_token: str
    signing_secret: str
    clock: Clock = field(default_factory=SystemClock)
    public_base_url: str = "https://sos.example.test"
    app_transport: httpx.AsyncBaseTransport | None = None
    messages: list[Message] = field(default_factory=list)
    updates: list[Update] = field(default_factory=list)
    ephemerals: list[Ephemeral] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    refused: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    _faults: deque[Fault] = field(default_factory=deque)
    _seq: int = 0

    def __post_init__(self) -> None:
        self.transport = httpx.MockTransport(self._serve)

    # --- test API: faults and expectations ------------------------------------------------------

    def fail_next(
        self, error: str = "", *, status: int = 200, retry_after: int | None = None
    ) -> None:
        """Refuse the next `chat.postMessage`: with `{"ok": false, "error": error}`, or with an
        HTTP `status` (429 with `Retry-After: retry_after`)."""
        self._faults.append(Fault(error or "ratelimited", status, retry_after))

    def expect_post(self, *, channel: str) -> Message:
        """The oldest message posted to `channel` (as the app asked) that no test took yet."""
        return _take(self.messages, lambda m: m.channel == channel, f"a post to {channel}")

    def expect_update(self, message: Message) -> Update:
        return _take(self.updates, lambda u: u.message is message, f"an update of {message!r}")

    def expect_ephemeral(self, *, user: str) -> Ephemeral:
        return _take(self.ephemerals, lambda e: e.user == user, f"an ephemeral line to {user}")

    def assert_clean(self) -> None:
        recorded: list[_Recorded] = [*self.messages, *self.updates, *self.ephemerals]
        untaken = [item for item in recorded if not item.taken]
        problems = self.errors + [f"unexpected {item!r}" for item in untaken]
        if problems:
            raise AssertionError("fake Slack is not clean:\n- " + "\n- ".join(problems))

    # --- test API: people click -----------------------------------------------------------------

    def interaction(self, message: Message, *, user: str) -> Interaction:
        """`user` pressing Accept on `message`, as the `block_actions` payload Slack sends."""
        button = message.button()
        self._seq += 1
        now = self.clock.now().timestamp()
        action_ts = f"{now:.0f}.{self._seq:06d}"
        payload: dict[str, Any] = {
            "type": "block_actions",
            "team": {"id": "T0SOS", "domain": "bank"},
            "user": {"id": user, "username": user.lower(), "team_id": "T0SOS"},
            "api_app_id": "A0SOS",
            "container": {
                "type": "message",
                "message_ts": message.ts,
                "channel_id": message.channel_id,
                "is_ephemeral": False,
            },
            "trigger_id": f"{self._seq}.{now:.0f}.fake",
            "channel": {"id": message.channel_id, "name": "directmessage"},
            "message": {
                "type": "message",
                "ts": message.ts,
                "text": message.text,
                "blocks": message.blocks,
            },
            "response_url": f"https://hooks.slack.test/actions/T0SOS/{self._seq}/x",
            "actions": [{**button, "block_id": "sos_page", "action_ts": action_ts}],
        }
        body = urlencode({"payload": json.dumps(payload)}).encode()
        return Interaction(body, payload)

    async def deliver(
        self,
        interaction: Interaction,
        *,
        timestamp: int | None = None,
        bad_signature: bool = False,
    ) -> httpx.Response:
        """Post `interaction` into the app, signed at `timestamp` (default: the clock's now)."""
        assert self.app_transport is not None, "set app_transport to the app's ASGI transport"
        ts = str(timestamp if timestamp is not None else int(self.clock.now().timestamp()))
        secret = self.signing_secret + ("-forged" if bad_signature else "")
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": slack_signature(secret, ts, interaction.body),
        }
        async with httpx.AsyncClient(
            transport=self.app_transport, base_url=self.public_base_url
        ) as client:
            return await client.post(INTERACTIVE_PATH, content=interaction.body, headers=headers)

    async def click(
        self,
        message: Message,
        *,
        user: str,
        timestamp: int | None = None,
        bad_signature: bool = False,
    ) -> httpx.Response:
        interaction = self.interaction(message, user=user)
        return await self.deliver(interaction, timestamp=timestamp, bad_signature=bad_signature)

    # --- the Web API ----------------------------------------------------------------------------

    def _serve(self, request: httpx.Request) -> httpx.Response:
        method = request.url.path.rsplit("/", 1)[-1]
        if request.method != "POST":
            return self._refuse(method, {}, "invalid_request", f"{request.method} {method}")
        if request.headers.get("authorization") != f"Bearer {self.bot_token}":
            return self._refuse(method, {}, "invalid_auth", "a request without the bot token")
        if not request.headers.get("content-type", "").startswith("application/json"):
            return self._refuse(method, {}, "invalid_form_data", "a request that is not JSON")
        body: dict[str, Any] = json.loads(request.content)
        handler = {
            "chat.postMessage": self._post_message,
            "chat.update": self._update,
            "chat.postEphemeral": self._post_ephemeral,
        }.get(method)
        if handler is None:
            return self._refuse(method, body, "unknown_method", f"unexpected method {method}")
        return handler(body)

    def _refuse(
        self, method: str, body: dict[str, Any], error: str, problem: str | None = None
    ) -> httpx.Response:
        """An `ok: false` answer; with a `problem`, also a test failure (the app misbehaved)."""
        if problem is not None:
            self.errors.append(f"{method}: {problem}")
        self.refused.append((method, body))
        return httpx.Response(200, json={"ok": False, "error": error})

    def _post_message(self, body: dict[str, Any]) -> httpx.Response:
        channel, text, blocks = body.get("channel"), body.get("text"), body.get("blocks", [])
        problems = _message_problems(text, blocks)
        if not isinstance(channel, str) or not channel:
            problems.append("no channel")
        if problems:
            return self._refuse("chat.postMessage", body, "invalid_arguments", "; ".join(problems))
        if self._faults:
            fault = self._faults.popleft()
            self.refused.append(("chat.postMessage", body))
            if fault.status != 200:
                headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after else {}
                return httpx.Response(fault.status, json={"ok": False}, headers=headers)
            return httpx.Response(200, json={"ok": False, "error": fault.error})
        assert isinstance(channel, str)
        self._seq += 1
        channel_id = "D" + channel[1:] if channel.startswith("U") else channel
        ts = f"{self.clock.now().timestamp():.0f}.{self._seq:06d}"
        self.messages.append(Message(channel, channel_id, ts, str(text), list(blocks)))
        return httpx.Response(200, json={"ok": True, "channel": channel_id, "ts": ts})

    def _update(self, body: dict[str, Any]) -> httpx.Response:
        text, blocks = body.get("text"), body.get("blocks", [])
        found = next(
            (
                m
                for m in self.messages
                if m.channel_id == body.get("channel") and m.ts == body.get("ts")
            ),
            None,
        )
        if found is None:
            return self._refuse("chat.update", body, "message_not_found", "no such message")
        problems = _message_problems(text, blocks)
        if problems:
            return self._refuse("chat.update", body, "invalid_arguments", "; ".join(problems))
        found.text, found.blocks = str(text), list(blocks)
        self.updates.append(Update(found, str(text), list(blocks)))
        return httpx.Response(200, json={"ok": True, "channel": found.channel_id, "ts": found.ts})

    def _post_ephemeral(self, body: dict[str, Any]) -> httpx.Response:
        channel, user, text = body.get("channel"), body.get("user"), body.get("text")
        if not all(isinstance(v, str) and v for v in (channel, user, text)):
            return self._refuse("chat.postEphemeral", body, "invalid_arguments", "missing fields")
        self.ephemerals.append(Ephemeral(str(channel), str(user), str(text)))
        return httpx.Response(200, json={"ok": True, "message_ts": "0.0"})


def _take(items: list[T], match: Callable[[T], bool], what: str) -> T:
    for item in items:
        if not item.taken and match(item):
            item.taken = True
            return item
    raise AssertionError(f"expected {what}; got {[i for i in items if not i.taken]!r}")


def _texts(value: Any) -> list[str]:
    """Every `text` string anywhere in a block structure."""
    if isinstance(value, list):
        return [t for item in value for t in _texts(item)]
    if isinstance(value, dict):
        return [
            t
            for k, v in value.items()
            for t in ([v] if k == "text" and isinstance(v, str) else _texts(v))
        ]
    return []


def _message_problems(text: object, blocks: object) -> list[str]:
    """Slack's documented limits that our messages could break."""
    problems = []
    if not isinstance(text, str) or not text.strip():
        problems.append("no fallback text (Slack needs it for notifications)")
    if not isinstance(blocks, list) or len(blocks) > MAX_BLOCKS:
        return [*problems, "blocks is not a list of at most 50 blocks"]
    for block in blocks:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind not in BLOCK_TYPES:
            problems.append(f"unknown block type {kind!r}")
        elif kind == "section" and len(block["text"]["text"]) > MAX_SECTION_TEXT:
            problems.append("section text longer than 3000 characters")
        for element in block.get("elements", []) if kind == "actions" else []:
            if element.get("type") != "button" or not element.get("action_id"):
                problems.append(f"an action element that is not a button: {element!r}")
            elif len(element["text"]["text"]) > MAX_BUTTON_TEXT:
                problems.append("button text longer than 75 characters")
    return problems
