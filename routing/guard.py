"""The outbound-content guard: no text we send (SMS, chat, spoken TwiML) carries an IBAN, a card
number, an amount of money or a balance. Pure: `scrub` returns the safe text and what it removed,
the caller records it."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

IBAN = "iban"
CARD = "card_number"
AMOUNT = "amount"
BALANCE = "balance"

_REDACTED = {IBAN: "[IBAN]", CARD: "[card]", AMOUNT: "[amount]", BALANCE: "[balance]"}

# Where an IBAN may start: two letters and two check digits; `_ibans` finds how far it runs.
_IBAN_START = re.compile(r"\b[A-Z]{2}\d{2}", re.IGNORECASE)
# Links we send (accept links, status pages) end in random tokens: about one token in 10,000 holds
# a run that passes the IBAN check by chance. IBANs are not looked for inside a link; cards,
# amounts and balances still are.
_LINK = re.compile(r"\bhttps?://\S+", re.IGNORECASE)
# 13 to 19 digits, optionally grouped by spaces or dashes. No card number starts with 0, and none
# follows a `+`: phone numbers (`+31 6 1234 5678 90`, `0031 6 …`) are not cards.
_CARD = re.compile(r"(?<![\d+])[1-9](?:[ -]?\d){12,18}(?![\d])")
_NUMBER = r"\d{1,3}(?:[.,\s]\d{3})*(?:[.,]\d{1,2}|,-)?|\d+(?:[.,]\d{1,2}|,-)?"
_AMOUNT = re.compile(
    rf"(?:[€$£]|\b(?:EUR|USD|GBP)\b)\s?-?(?:{_NUMBER})"
    rf"|(?:{_NUMBER})\s?(?:[€$£]|\b(?:EUR|euro|euros|USD|dollar|dollars|GBP)\b)",
    re.IGNORECASE,
)
_BALANCE = re.compile(
    rf"\b(?:saldo|balance|balans|tegoed)\b[^\d\n]{{0,20}}-?(?:{_NUMBER})", re.IGNORECASE
)


@dataclass(frozen=True, slots=True)
class Scrubbed:
    text: str
    found: tuple[str, ...]  # the kinds removed, e.g. ("iban", "amount"); empty when clean

    @property
    def blocked(self) -> bool:
        return bool(self.found)


def _iban_valid(candidate: str) -> bool:
    raw = re.sub(r"\s", "", candidate).upper()
    if not 15 <= len(raw) <= 34:
        return False
    moved = raw[4:] + raw[:4]
    digits = "".join(str(int(ch, 36)) for ch in moved)
    return int(digits) % 97 == 1


def _luhn_valid(candidate: str) -> bool:
    digits = [int(ch) for ch in candidate if ch.isdigit()]
    total = 0
    for i, digit in enumerate(reversed(digits)):
        if i % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def _ibans(text: str) -> list[tuple[int, int]]:
    """Spans of valid IBANs (mod-97 check), written compact or in groups with single spaces."""
    spans: list[tuple[int, int]] = []
    links = [link.span() for link in _LINK.finditer(text)]
    pos = 0
    while match := _IBAN_START.search(text, pos):
        if any(start <= match.start() < end for start, end in links):
            pos = match.start() + 1
            continue
        ends: list[int] = []  # candidate ends, in text positions, after each further character
        i, compact = match.end(), 4
        while i < len(text) and compact < 34:
            if text[i] == " " and i + 1 < len(text) and text[i + 1].isalnum():
                i += 1
            if not text[i].isalnum():
                break
            i, compact = i + 1, compact + 1
            ends.append(i)
        best = next(
            (
                end
                for end in reversed(ends)
                if (end == len(text) or not text[end].isalnum())
                and _iban_valid(text[match.start() : end])
            ),
            None,
        )
        if best is None:
            pos = match.start() + 1
            continue
        spans.append((match.start(), best))
        pos = best
    return spans


def scrub(text: str) -> Scrubbed:
    """`text` with every IBAN, card number (valid Luhn), amount and balance replaced by a marker."""
    found: list[str] = []

    for start, end in reversed(_ibans(text)):
        text = text[:start] + _REDACTED[IBAN] + text[end:]
        found.append(IBAN)

    def card(match: re.Match[str]) -> str:
        if not _luhn_valid(match.group(0)):
            return match.group(0)
        found.append(CARD)
        return _REDACTED[CARD]

    def marker(kind: str) -> Callable[[re.Match[str]], str]:
        def sub(_match: re.Match[str]) -> str:
            found.append(kind)
            return _REDACTED[kind]

        return sub

    text = _CARD.sub(card, text)
    text = _BALANCE.sub(marker(BALANCE), text)
    text = _AMOUNT.sub(marker(AMOUNT), text)
    return Scrubbed(text, tuple(dict.fromkeys(found)))
