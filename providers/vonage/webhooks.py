"""Vonage's webhook payloads, read into the port's neutral values. Pure functions over the JSON.

Voice event statuses [doc: Voice API webhook reference]: `started`, `ringing`, `answered`,
`machine` / `human` (when machine detection is on), `completed`, and the ways a call never
reaches anyone: `busy`, `timeout`, `unanswered`, `rejected`, `failed`, `cancelled`.
SMS statuses of the Messages API: `submitted`, `delivered`, `rejected`, `undeliverable`.
Payloads are untrusted input: every value is read as a bounded string.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from providers.base import DeliveryState
from providers.vonage.config import e164

# Call statuses that end a call before anyone could press a key.
CALL_MISSED = {
    "busy": "busy",
    "timeout": "no answer",
    "unanswered": "no answer",
    "rejected": "rejected",
    "failed": "failed",
    "cancelled": "canceled",
}
SMS_FAILED = {"rejected", "undeliverable"}
# The bridge's vocabulary (`routing.bridge.service.call_status`) for Vonage's call statuses.
BRIDGE_STATUS = {
    "answered": "in-progress",
    "completed": "completed",
    "busy": "busy",
    "timeout": "no-answer",
    "unanswered": "no-answer",
    "rejected": "failed",
    "failed": "failed",
    "cancelled": "canceled",
}


def text(payload: Mapping[str, Any], key: str, limit: int = 64) -> str:
    value = payload.get(key)
    # A database text holds no NUL: a crafted SMS must not turn into a 500.
    return value.replace("\x00", "")[:limit] if isinstance(value, str) else ""


def call_state(status: str) -> tuple[DeliveryState | None, str]:
    """A call status as a delivery state: started and ringing say nothing yet; `answered` is
    delivered (a keypress decides acceptance); `completed` is a miss unless a keypress already
    accepted (the domain knows that); the rest are misses."""
    if status in CALL_MISSED:
        return DeliveryState.FAILED, CALL_MISSED[status]
    if status == "completed":
        return DeliveryState.FAILED, "call ended without a keypress"
    if status == "answered":
        return DeliveryState.DELIVERED, "answered"
    return None, status


def is_machine(event: Mapping[str, Any]) -> bool:
    """Machine detection heard voicemail: never a human, whatever happens next."""
    return text(event, "status") == "machine"


def digits(event: Mapping[str, Any]) -> str:
    """The keys pressed, from an `input` action's webhook (`{"dtmf": {"digits": "1"}}`)."""
    dtmf = event.get("dtmf")
    return text(dtmf, "digits", 20).strip() if isinstance(dtmf, Mapping) else ""


def message_state(status: str, error: object = None) -> tuple[DeliveryState | None, str]:
    if status == "delivered":
        return DeliveryState.DELIVERED, "delivered"
    if status in SMS_FAILED:
        reason = ""
        if isinstance(error, Mapping):
            reason = text(error, "title", 80) or text(error, "type", 80)
        return DeliveryState.FAILED, f"SMS {status}" + (f" ({reason})" if reason else "")
    return None, status


@dataclass(frozen=True, slots=True)
class InboundSms:
    message_uuid: str
    from_: str
    to: str
    body: str


def inbound_sms(payload: Mapping[str, Any]) -> InboundSms:
    """An SMS to our number; numbers come without `+` and are returned as E.164."""
    return InboundSms(
        message_uuid=text(payload, "message_uuid"),
        from_=e164(text(payload, "from", 32)),
        to=e164(text(payload, "to", 32)),
        body=text(payload, "text", 1600),
    )


@dataclass(frozen=True, slots=True)
class TextStatus:
    """A status webhook about a text that is not a page: an SMS, or a call that spoke it."""

    external_id: str
    state: DeliveryState | None  # None: nothing to record yet (ringing, ...)
    detail: str


def sms_text_status(payload: Mapping[str, Any]) -> TextStatus:
    status = text(payload, "status")
    uuid = text(payload, "message_uuid")
    if status == "submitted":
        return TextStatus(uuid, DeliveryState.SENT, "sent")
    state, detail = message_state(status, payload.get("error"))
    return TextStatus(uuid, state, detail)


def call_text_status(event: Mapping[str, Any]) -> TextStatus:
    status = text(event, "status")
    uuid = text(event, "uuid")
    if status in CALL_MISSED:
        return TextStatus(uuid, DeliveryState.FAILED, f"call {CALL_MISSED[status]}")
    if status in ("answered", "completed"):
        return TextStatus(uuid, DeliveryState.DELIVERED, "call answered")
    return TextStatus(uuid, None, status)
