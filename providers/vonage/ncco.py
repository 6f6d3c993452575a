"""NCCO documents (Vonage's call-control JSON), mirroring the TwiML we send Twilio.

NCCO is JSON, so text needs no escaping; a `talk` holds at most 1500 characters. When the last
action of an NCCO finishes, Vonage hangs up.
"""

from __future__ import annotations

from typing import Any

Ncco = list[dict[str, Any]]

VOICES = {"nl": "nl-NL", "en": "en-GB"}
TALK_MAX = 1500
KEYPRESS_SECONDS = 8


def talk(text: str, language: str, *, loop: int = 1, barge_in: bool = False) -> dict[str, Any]:
    action: dict[str, Any] = {
        "action": "talk",
        "text": text[:TALK_MAX],
        "language": VOICES.get(language, "nl-NL"),
    }
    if loop != 1:
        action["loop"] = loop
    if barge_in:
        action["bargeIn"] = True
    return action


def ask_for_keypress(*, prompt: str, language: str, input_url: str) -> Ncco:
    """Say the prompt twice while listening for one key; the key (or silence, after the time
    out) is posted to `input_url`, whose answer is the call's next NCCO."""
    return [
        talk(prompt, language, loop=2, barge_in=True),
        {
            "action": "input",
            "type": ["dtmf"],
            "dtmf": {"maxDigits": 1, "timeOut": KEYPRESS_SECONDS},
            "eventUrl": [input_url],
            "eventMethod": "POST",
        },
    ]


def say_and_join(*, text: str, language: str, room: str) -> Ncco:
    """Tell the acceptor they are connected, then put them in the report's conversation (room)."""
    return [talk(text, language), conversation(room, starts_room=True, ends_room=False)]


def join_room(*, room: str, starts_room: bool) -> Ncco:
    """A bridge call: whoever `starts_room` opens it and ends it on leaving; the others wait."""
    return [conversation(room, starts_room=starts_room, ends_room=starts_room)]


def conversation(room: str, *, starts_room: bool, ends_room: bool) -> dict[str, Any]:
    return {
        "action": "conversation",
        "name": room,
        "startOnEnter": starts_room,
        "endOnExit": ends_room,
    }


def say_only(*, text: str, language: str) -> Ncco:
    """A call that says one thing, then Vonage hangs up."""
    return [talk(text, language)]
