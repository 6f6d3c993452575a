"""TwiML documents, built with the `twilio` package so every piece of text is escaped.

Escaping is not enough for XML: a text also loses the characters XML 1.0 cannot hold (most
control characters; a document with one is no TwiML at all), and is cut to what Twilio takes:
3000 bytes of UTF-8 in a `<Say>` (the smallest of its text-to-speech limits), 1600 characters in
a `<Message>` (and in an SMS sent by the REST API).
"""

from __future__ import annotations

import re

from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import Gather, VoiceResponse

VOICES = {"nl": "nl-NL", "en": "en-GB"}
SAY_MAX_BYTES = 3000
MESSAGE_MAX = 1600
_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def xml_text(text: str, max_bytes: int | None = None) -> str:
    """`text` as XML can hold it, cut (at a character) to `max_bytes` of UTF-8 with `…`."""
    text = _NOT_XML.sub("", text)
    if max_bytes is None or len(text.encode()) <= max_bytes:
        return text
    cut = text.encode()[: max_bytes - len("…".encode())].decode(errors="ignore")
    return cut + "…"


def _say(response: VoiceResponse | Gather, text: str, language: str) -> None:
    response.say(xml_text(text, SAY_MAX_BYTES), language=VOICES.get(language, "nl-NL"))


def ask_for_keypress(*, prompt: str, language: str, action_url: str) -> str:
    """Say the prompt twice while listening for one digit; no key still calls the action."""
    response = VoiceResponse()
    gather = response.gather(
        input="dtmf", num_digits=1, timeout=8, action=action_url, action_on_empty_result=True
    )
    _say(gather, prompt, language)
    gather.pause(length=1)
    _say(gather, prompt, language)
    return str(response)


def say_and_join(*, text: str, language: str, room: str, status_url: str) -> str:
    """Tell the acceptor they are connected, then put them in the report's conference room."""
    response = VoiceResponse()
    _say(response, text, language)
    dial = response.dial()
    dial.conference(
        room,
        start_conference_on_enter=True,
        end_conference_on_exit=False,
        beep=False,
        status_callback=status_url,
        status_callback_event="start end join leave",
    )
    return str(response)


def say_only(*, text: str, language: str) -> str:
    """`<Response><Say>text</Say></Response>`: a call that says one thing (then Twilio hangs up)."""
    response = VoiceResponse()
    _say(response, text, language)
    return str(response)


def say_and_hang_up(*, text: str, language: str) -> str:
    response = VoiceResponse()
    _say(response, text, language)
    response.hangup()
    return str(response)


def sms_reply(text: str | None) -> str:
    response = MessagingResponse()
    if text:
        response.message(xml_text(text)[:MESSAGE_MAX])
    return str(response)


def menu(*, prompt: str, language: str, action_url: str) -> str:
    """One menu question: one digit, asked once; silence still reaches the action."""
    response = VoiceResponse()
    gather = response.gather(
        input="dtmf", num_digits=1, timeout=6, action=action_url, action_on_empty_result=True
    )
    _say(gather, prompt, language)
    return str(response)


def hold_in_room(*, text: str, language: str, room: str, wait_url: str, status_url: str) -> str:
    """Tell the caller what happens next, then hold them in the room until a colleague joins."""
    response = VoiceResponse()
    _say(response, text, language)
    dial = response.dial()
    dial.conference(
        room,
        start_conference_on_enter=False,
        end_conference_on_exit=False,
        beep=False,
        wait_url=wait_url,
        wait_method="POST",
        status_callback=status_url,
        status_callback_event="join leave",
    )
    return str(response)


def hold_message(*, text: str, language: str) -> str:
    """What a holding caller hears, on a loop (Twilio replays the wait URL)."""
    response = VoiceResponse()
    _say(response, text, language)
    response.pause(length=15)
    return str(response)
