"""The pure half of the pumping guard: which numbers a customer text or call may go to at all,
and the keys velocity is counted under. No database, no settings, no clock."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import timedelta

import phonenumbers
from phonenumbers import PhoneNumberType as T

from routing.notify.outbox import Contact
from routing.phone import DEFAULT_REGION, mask_phone

# The EU member states and the rest of the EEA (Iceland, Liechtenstein, Norway), by ISO region.
EU_EEA = frozenset(
    {
        "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE",
        "IS", "IT", "LI", "LT", "LU", "LV", "MT", "NL", "NO", "PL", "PT", "RO", "SE", "SI", "SK",
    }
)  # fmt: skip
# What a customer's own phone may be: mobiles take texts; calls may also reach a landline or a
# VoIP number. Everything else (premium-rate, shared-cost, UAN, personal, pager, voicemail,
# toll-free, unknown) is where pumping pays out, or no customer's phone.
ALLOWED_TYPES = {
    "sms": frozenset({T.MOBILE, T.FIXED_LINE_OR_MOBILE}),
    "voice": frozenset({T.MOBILE, T.FIXED_LINE_OR_MOBILE, T.FIXED_LINE, T.VOIP}),
}
TYPE_NAMES = {
    T.FIXED_LINE: "landline",
    T.MOBILE: "mobile",
    T.FIXED_LINE_OR_MOBILE: "mobile",
    T.TOLL_FREE: "toll-free",
    T.PREMIUM_RATE: "premium-rate",
    T.SHARED_COST: "shared-cost",
    T.VOIP: "VoIP",
    T.PERSONAL_NUMBER: "personal",
    T.PAGER: "pager",
    T.UAN: "UAN",
    T.VOICEMAIL: "voicemail",
}
# The prefix breaker's range: a number without its last 4 digits (10,000 neighbours).
PREFIX_DROPS = 4

# Why a send was blocked (`Block.reason`, and the audit event's `data.reason`).
INVALID, COUNTRY, NUMBER_TYPE = "invalid_number", "country", "number_type"
# Breaker scopes; a block by a breaker has the reason "<scope>_breaker".
NUMBER, PREFIX, GLOBAL = "number", "prefix", "global"


@dataclass(frozen=True, slots=True)
class Block:
    """A send that must not happen: a `reason` code and words for people (never the number)."""

    reason: str
    detail: str


@dataclass(frozen=True, slots=True)
class Policy:
    """The pumping guard's configuration (built by `app/container.py` from SOS_PUMPING__*).

    `secret` keys the hashes numbers are counted under (the same in every process, or each
    process counts its own); at most `per_number`, `per_prefix` and `per_all` customer sends per
    `window` before that scope's breaker opens for `cooldown`; a breaker alerts `operators`
    unless one of its scope opened within `mute`."""

    secret: bytes = b""
    regions: frozenset[str] = EU_EEA
    per_number: int = 20
    per_prefix: int = 300
    per_all: int = 2000
    window: timedelta = timedelta(hours=1)
    cooldown: timedelta = timedelta(hours=1)
    operators: tuple[Contact, ...] = field(default=())
    language: str = "nl"
    mute: timedelta = timedelta(minutes=15)

    def limit(self, scope: str) -> int:
        return {NUMBER: self.per_number, PREFIX: self.per_prefix, GLOBAL: self.per_all}[scope]


def screen(e164: str, *, channel: str, regions: frozenset[str]) -> Block | None:
    """Whether a `channel` ("sms" or "voice") send may go to `e164` at all: a valid number in an
    allowed region, of a type a customer's phone has. None when it may."""
    try:
        number = phonenumbers.parse(e164, DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        return Block(INVALID, "not a phone number")
    if not phonenumbers.is_valid_number(number):
        return Block(INVALID, "not a valid phone number")
    region = phonenumbers.region_code_for_number(number) or "unknown"
    if region not in regions:
        return Block(COUNTRY, f"a number in {region}, outside the allowed countries")
    kind = phonenumbers.number_type(number)
    if kind not in ALLOWED_TYPES.get(channel, ALLOWED_TYPES["sms"]):
        how = "a call" if channel == "voice" else "a text"
        return Block(NUMBER_TYPE, f"a {TYPE_NAMES.get(kind, 'special')} number: no {how}")
    return None


def prefix_of(e164: str) -> str:
    return e164[:-PREFIX_DROPS]


def key(secret: bytes, scope: str, value: str) -> str:
    """The keyed hash a number or prefix is counted under (`global` has the empty key)."""
    if scope == GLOBAL:
        return ""
    return hmac.new(secret, f"{scope}:{value}".encode(), hashlib.sha256).hexdigest()[:32]


def label(scope: str, e164: str) -> str:
    """What an admin sees of a breaker's scope: a masked number, a prefix, or "all"."""
    if scope == NUMBER:
        return mask_phone(e164)
    if scope == PREFIX:
        return prefix_of(e164) + "X" * PREFIX_DROPS
    return "all"
