"""Phone numbers: everything stored or dialled is E.164, parsed with `phonenumbers` (region NL)."""

from __future__ import annotations

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
