"""Twilio's webhook fields, read into the port's neutral values. Pure functions over the form."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from providers.base import DeliveryState

# Call statuses that end a call without anyone pressing a key.
CALL_MISSED = {"busy": "busy", "no-answer": "no answer", "failed": "failed", "canceled": "canceled"}
MACHINE = {"machine_start", "machine_end_beep", "machine_end_silence", "machine_end_other", "fax"}


def call_state(status: str) -> tuple[DeliveryState | None, str]:
    """A call status as a delivery state: ringing/answered keep it `sent`; `completed` is a miss
    unless a keypress already accepted (the domain knows that); the rest are misses."""
    if status in CALL_MISSED:
        return DeliveryState.FAILED, CALL_MISSED[status]
    if status == "completed":
        return DeliveryState.FAILED, "call ended without a keypress"
    if status == "in-progress":
        return DeliveryState.DELIVERED, "answered"
    return None, status


def message_state(status: str, error_code: object = None) -> tuple[DeliveryState | None, str]:
    if status == "sent":
        return DeliveryState.SENT, "sent"
    if status == "delivered":
        return DeliveryState.DELIVERED, "delivered"
    if status in ("undelivered", "failed"):
        code = f" (error {error_code})" if error_code not in (None, "") else ""
        return DeliveryState.FAILED, f"SMS {status}{code}"
    return None, status


def is_machine(form: Mapping[str, str]) -> bool:
    return form.get("AnsweredBy", "") in MACHINE


@dataclass(frozen=True, slots=True)
class InboundSms:
    message_sid: str
    from_: str
    to: str
    body: str


def inbound_sms(form: Mapping[str, str]) -> InboundSms:
    return InboundSms(
        message_sid=form.get("MessageSid", "")[:64],
        from_=form.get("From", "")[:32],
        to=form.get("To", "")[:32],
        body=form.get("Body", "").replace("\x00", "")[:1600],  # a database text holds no NUL
    )


@dataclass(frozen=True, slots=True)
class TextStatus:
    """A status callback about a text that is not a page: an SMS, or a call that spoke it."""

    sid: str
    state: DeliveryState | None  # None: nothing to record yet (queued, ringing, ...)
    detail: str


def text_status(form: Mapping[str, str]) -> TextStatus:
    """Read a message status (`MessageStatus`) or, for a spoken text, a call status."""
    if "MessageStatus" in form:
        state, detail = message_state(form.get("MessageStatus", ""), form.get("ErrorCode"))
        return TextStatus(form.get("MessageSid", "")[:64], state, detail)
    status = form.get("CallStatus", "")
    sid = form.get("CallSid", "")[:64]
    if status in CALL_MISSED:
        return TextStatus(sid, DeliveryState.FAILED, f"call {CALL_MISSED[status]}")
    if status in ("in-progress", "completed"):
        return TextStatus(sid, DeliveryState.DELIVERED, "call answered")
    return TextStatus(sid, None, status)
