"""Phone numbers: everything stored or dialled is E.164, parsed with `phonenumbers` (region NL)."""

from __future__ import annotations

import re

import phonenumbers

DEFAULT_REGION = "NL"


def normalize_phone(raw: str, *, region: str = DEFAULT_REGION) -> str:
    """Return `raw` as E.164 (`06 12345678` → `+31612345678`), or raise ValueError."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError("not a phone number") from exc
    if not phonenumbers.is_valid_number(number):
        raise ValueError("not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def mask_phone(e164: str) -> str:
    """`+31612345678` → `+31*******78`: enough to recognise, not enough to dial."""
    if len(e164) <= 5:
        return "*" * len(e164)
    return e164[:3] + "*" * (len(e164) - 5) + e164[-2:]


# A phone number in free text: `+` (or `%2B` in a URL) and 8-15 digits, or a national number
# (leading 0) of 9-16 digits, with single spaces or hyphens allowed between digits; not part of a
# longer word (a national number not of a hyphenated one either: a UUID's all-digit groups).
NUMBER_IN_TEXT = re.compile(
    r"(?<![\w+*%])(?:(?:\+|%2[Bb])[0-9](?:[ -]?[0-9]){7,14}(?![\w*])"
    r"|(?<!-)0[0-9](?:[ -]?[0-9]){7,14}(?![\w*]|-\w))"
)


def last_two(number: str) -> str:
    """`+31612345678` → `+*********78`: only the last two digits stay (logs, errors, provider
    messages), enough to match a number one already knows and nothing more."""
    international = number.startswith(("+", "%2B", "%2b"))
    digits = [c for c in number.removeprefix("%2B").removeprefix("%2b") if c.isdigit()]
    return ("+" if international else "") + "*" * (len(digits) - 2) + "".join(digits[-2:])


def mask_numbers(text: str) -> str:
    """`text` with every phone number in it masked to its last two digits."""
    return NUMBER_IN_TEXT.sub(lambda m: last_two(m.group(0)), text)


SMS_TYPES = frozenset(
    {phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE}
)


def can_receive_sms(raw: str, *, region: str = DEFAULT_REGION) -> bool:
    """Whether `raw` is a valid number that may be a mobile (a landline or "anonymous" is not)."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.is_valid_number(number) and phonenumbers.number_type(number) in SMS_TYPES
