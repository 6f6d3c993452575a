"""The outbound-content guard: no text we send (SMS, chat, spoken TwiML) carries an IBAN, a card
number, an amount of money or a balance. Pure: `scrub` returns the safe text and what it removed,
the caller records it.

Nor does it carry characters that make it read differently from what it is (`plain`): control
characters and invisible direction controls are dropped silently (they are no customer data, so
nothing is recorded). A name put into a text is one line of at most `NAME_LIMIT` characters
(`one_line`). The database keeps what people typed; only what we show or send is plain."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

IBAN = "iban"
CARD = "card_number"
AMOUNT = "amount"
BALANCE = "balance"

# Control characters (a bell, a terminal escape, a vertical tab; XML cannot even hold most of
# them), and invisible format characters that reorder or hide text: bidi embeddings, overrides
# and isolates (U+202E shows "Anna\u202egnp.exe" as "Annaexe.png"), marks, zero-width spaces,
# word joiners, the BOM, noncharacters and lone surrogates. Zero-width (non-)joiners stay:
# emoji and some scripts need them.
_INVISIBLE = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064"
    r"\u2066-\u206f\ufeff\ufff9-\ufffb\ufffe\uffff\ud800-\udfff]"
)
NAME_LIMIT = 40


def plain(text: str) -> str:
    """`text` without control or invisible format characters; line breaks stay (as `\\n`), a tab
    is a space."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    return _INVISIBLE.sub("", text)


def one_line(value: str, limit: int = NAME_LIMIT) -> str:
    """A name or other value for inside a text: `plain`, on one line, at most `limit`
    characters (cut with `…`)."""
    line = " ".join(plain(value).split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


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
    """`text` made `plain`, with every IBAN, card number (valid Luhn), amount and balance replaced
    by a marker."""
    found: list[str] = []
    text = plain(text)

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
