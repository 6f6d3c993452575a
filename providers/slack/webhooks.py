"""Slack's interaction payloads, read into plain values. Pure functions over the raw body.

An interaction arrives form-encoded with one field, `payload`, holding JSON. Only a click on a
page's Accept button (`type: "block_actions"`, `action_id` `accept_page`, our page id as `value`)
means anything to us; everything else is `None`. Anything that is not a payload at all raises
`ValueError`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from providers.slack.sender import ACCEPT_ACTION

MAX_PAGE_ID = 2**63 - 1


@dataclass(frozen=True, slots=True)
class AcceptClick:
    """Someone pressed Accept on a page message."""

    user_id: str  # the Slack user who clicked (not necessarily the person paged)
    page_id: int
    channel_id: str  # where the message is, with `message_ts`: what `chat.update` needs
    message_ts: str
    action_ts: str  # unique per click: with `user_id`, what makes a redelivery recognisable
    response_url: str

    @property
    def provider_id(self) -> str:
        """This click's id for deduplication (at most 64 characters)."""
        return f"slack:{self.user_id}:{self.action_ts}"


def payload(body: bytes) -> dict[str, Any]:
    """The JSON in the `payload` form field."""
    form = dict(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))
    if "payload" not in form:
        raise ValueError("no payload field")
    value = json.loads(form["payload"])
    if not isinstance(value, dict):
        raise ValueError("the payload is not a JSON object")
    return value


def accept_click(body: bytes) -> AcceptClick | None:
    """The Accept click in this interaction, or `None` when it is some other interaction."""
    data = payload(body)
    actions = data.get("actions")
    if data.get("type") != "block_actions" or not isinstance(actions, list) or not actions:
        return None
    action = _object(actions[0])
    value = str(action.get("value", ""))
    if action.get("action_id") != ACCEPT_ACTION or not value.isascii() or not value.isdigit():
        return None
    page_id = int(value)
    if not 1 <= page_id <= MAX_PAGE_ID:
        return None
    user_id = _text(_object(data.get("user")).get("id"), 32)
    channel_id = _text(_object(data.get("channel")).get("id"), 64)
    message_ts = _text(_object(data.get("message")).get("ts"), 32)
    action_ts = _text(action.get("action_ts") or data.get("trigger_id"), 24)
    if not (user_id and channel_id and message_ts and action_ts):
        raise ValueError("a block action without user, channel, message or action timestamp")
    return AcceptClick(
        user_id=user_id,
        page_id=page_id,
        channel_id=channel_id,
        message_ts=message_ts,
        action_ts=action_ts,
        response_url=_text(data.get("response_url"), 500),
    )


def _object(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: object, limit: int) -> str:
    return value[:limit] if isinstance(value, str) else ""
