"""Every text sos-router sends a customer, the code it sends a staff member to verify their
phone, and the alerts to the operators (the auditor's, a pumping breaker's): Dutch and English,
kept in this one module. Other languages fall back to Dutch.

What a customer text may carry: the report's reference, the promise in minutes, a time, and the
first name of the colleague who accepted. Never the customer's number, name, account or anything
they wrote. Every text still passes the outbound-content guard when it is queued.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from routing.guard import one_line
from routing.report.status import first_name

DEFAULT = "nl"
LANGUAGES = ("nl", "en")
HOME_ZONE = "Europe/Amsterdam"

RECEIPT = {
    "nl": "SOS-melding {reference} ontvangen. Binnen {minutes} belt een medewerker u. "
    "Wij vragen u nooit om codes of wachtwoorden.",
    "en": "SOS report {reference} received. A member of our staff will call you within "
    "{minutes}. We will never ask for your codes or passwords.",
}
ACCEPTED = {
    "nl": "SOS-melding {reference}: {name} van het {team} belt u nu op dit nummer.",
    "en": "SOS report {reference}: {name} from the {team} is calling you now on this number.",
}
CALLBACK = {
    "nl": "SOS-melding {reference}: we bellen u op {when}.",
    "en": "SOS report {reference}: we will call you on {when}.",
}
MESSAGE_ADDED = {
    "nl": "Uw bericht is toegevoegd aan SOS-melding {reference}.",
    "en": "Your message was added to SOS report {reference}.",
}
VERIFICATION_SMS = {
    "nl": "Je verificatiecode voor de SOS-dienst: {code}. Geldig {minutes}. "
    "Deel deze code met niemand.",
    "en": "Your SOS service verification code: {code}. Valid for {minutes}. "
    "Do not share it with anyone.",
}
VERIFICATION_SPOKEN = {
    "nl": "Dit is de SOS-dienst van de bank. Je verificatiecode is: {digits}. "
    "Ik herhaal: {digits}.",
    "en": "This is the bank's SOS service. Your verification code is: {digits}. "
    "Once more: {digits}.",
}

# The escalation auditor's alert to the operators: counts per kind of finding and report
# references, nothing about a customer.
OPERATORS_ALERT = {
    "nl": "SOS-router controle: {findings}.{references} Zie de logs en de console.",
    "en": "SOS-router audit: {findings}.{references} See the logs and the console.",
}
OPERATORS_FINDINGS = {
    "nl": {
        "lost_escalations": ("{n} melding zonder escalatie", "{n} meldingen zonder escalatie"),
        "stuck_timers": ("{n} escalatietimer blijft liggen", "{n} escalatietimers blijven liggen"),
        "stuck_pages": ("{n} oproep blijft hangen", "{n} oproepen blijven hangen"),
        "stuck_texts": ("{n} sms blijft hangen", "{n} sms'en blijven hangen"),
    },
    "en": {
        "lost_escalations": (
            "{n} report had lost its escalation",
            "{n} reports had lost their escalation",
        ),
        "stuck_timers": ("{n} escalation timer stuck", "{n} escalation timers stuck"),
        "stuck_pages": ("{n} page stuck", "{n} pages stuck"),
        "stuck_texts": ("{n} text stuck", "{n} texts stuck"),
    },
}
# A pumping breaker opened (`routing/pumping`): which scope, why, until when. No number.
PUMPING_ALERT = {
    "nl": "SOS-router: sms'en en oproepen aan {scope} gestopt tot {until} ({sent} in {minutes}, "
    "limiet {limit}). Oproepen aan medewerkers gaan door. Zie GET /v1/admin/blocks.",
    "en": "SOS-router: texts and calls to {scope} stopped until {until} ({sent} in {minutes}, "
    "limit {limit}). Staff paging continues. See GET /v1/admin/blocks.",
}
PUMPING_SCOPES = {
    "nl": {"number": "één klantnummer", "prefix": "een nummerreeks", "global": "alle klanten"},
    "en": {
        "number": "one customer number",
        "prefix": "one number range",
        "global": "all customers",
    },
}
OPERATORS_REPAIRED = {"nl": " ({n} hersteld)", "en": " ({n} repaired)"}
OPERATORS_REFERENCES = {"nl": " Meldingen: {references}.", "en": " Reports: {references}."}
OPERATORS_MORE = {"nl": " en {n} meer", "en": " and {n} more"}

# What a sent (or canceled) verification text keeps instead of the code.
CODE_REMOVED = "(verification code removed after sending)"

# The team a customer hears from, by report category.
TEAMS = {
    "nl": {
        "fraud": "fraudeteam",
        "account_takeover": "fraudeteam",
        "lost_card": "passenteam",
        "other": "SOS-team",
    },
    "en": {
        "fraud": "fraud team",
        "account_takeover": "fraud team",
        "lost_card": "card team",
        "other": "SOS team",
    },
}
MINUTES = {"nl": ("{n} minuut", "{n} minuten"), "en": ("{n} minute", "{n} minutes")}
DIGITS = {
    "nl": ("nul", "één", "twee", "drie", "vier", "vijf", "zes", "zeven", "acht", "negen"),
    "en": ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
}
WEEKDAYS = {
    "nl": ("maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "zaterdag", "zondag"),
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
}
MONTHS = {
    "nl": (
        "januari", "februari", "maart", "april", "mei", "juni",
        "juli", "augustus", "september", "oktober", "november", "december",
    ),
    "en": (
        "January", "February", "March", "April", "May", "June",
        "July", "August", "September", "October", "November", "December",
    ),
}  # fmt: skip
AT_TIME = {"nl": "{weekday} {day} {month} om {time}", "en": "{weekday} {day} {month} at {time}"}


def language_of(language: str | None) -> str:
    return language if language in LANGUAGES else DEFAULT


def promise_minutes(received_at: datetime, deadline_at: datetime) -> int:
    """The promise as whole minutes (rounded up, at least 1): what the receipt tells."""
    return max(1, math.ceil((deadline_at - received_at).total_seconds() / 60))


def minutes(language: str, n: int) -> str:
    one, many = MINUTES[language_of(language)]
    return (one if n == 1 else many).format(n=n)


def receipt(*, language: str, reference: str, minutes_promised: int) -> str:
    lang = language_of(language)
    return RECEIPT[lang].format(reference=reference, minutes=minutes(lang, minutes_promised))


def team(*, language: str, category: str) -> str:
    names = TEAMS[language_of(language)]
    return names.get(category, names["other"])


def accepted(*, language: str, reference: str, staff_name: str, category: str) -> str:
    """ "Anna van het fraudeteam belt u nu": the acceptor's first name only."""
    lang = language_of(language)
    return ACCEPTED[lang].format(
        reference=reference,
        name=one_line(first_name(staff_name)),
        team=team(language=lang, category=category),
    )


def local_time(*, language: str, at: datetime, time_zone: str = HOME_ZONE) -> str:
    """`maandag 5 januari om 14:30`: `at` on the wall clock of `time_zone`."""
    lang = language_of(language)
    local = at.astimezone(ZoneInfo(time_zone))
    return AT_TIME[lang].format(
        weekday=WEEKDAYS[lang][local.weekday()],
        day=local.day,
        month=MONTHS[lang][local.month - 1],
        time=f"{local:%H:%M}",
    )


def callback_scheduled(
    *, language: str, reference: str, at: datetime, time_zone: str = HOME_ZONE
) -> str:
    lang = language_of(language)
    when = local_time(language=lang, at=at, time_zone=time_zone)
    return CALLBACK[lang].format(reference=reference, when=when)


def message_added(*, language: str, reference: str) -> str:
    return MESSAGE_ADDED[language_of(language)].format(reference=reference)


def verification_sms(*, language: str, code: str, valid_minutes: int) -> str:
    lang = language_of(language)
    return VERIFICATION_SMS[lang].format(code=code, minutes=minutes(lang, valid_minutes))


def spoken_digits(*, language: str, code: str) -> str:
    """`123` → `one, two, three`: a code read out as words, one digit at a time."""
    words = DIGITS[language_of(language)]
    return ", ".join(words[int(ch)] for ch in code if ch.isdigit())


def verification_spoken(*, language: str, code: str) -> str:
    """What a verification call says: the code spelled out, twice."""
    lang = language_of(language)
    return VERIFICATION_SPOKEN[lang].format(digits=spoken_digits(language=lang, code=code))


def operators_alert(
    *,
    language: str,
    found: Mapping[str, int],
    repaired: Mapping[str, int],
    references: Sequence[str],
    total_reports: int,
) -> str:
    """ "SOS-router audit: 2 reports had lost their escalation (2 repaired). Reports: CDFGHJ,
    KMNPQR. ...": one line per kind in `found` (a count of zero is left out), then the first
    `references` of the `total_reports` concerned."""
    lang = language_of(language)
    parts = []
    for kind, n in found.items():
        if not n:
            continue
        one, many = OPERATORS_FINDINGS[lang][kind]
        part = (one if n == 1 else many).format(n=n)
        if repaired.get(kind):
            part += OPERATORS_REPAIRED[lang].format(n=repaired[kind])
        parts.append(part)
    listed = ""
    if references:
        listed = ", ".join(references)
        if total_reports > len(references):
            listed += OPERATORS_MORE[lang].format(n=total_reports - len(references))
        listed = OPERATORS_REFERENCES[lang].format(references=listed)
    return OPERATORS_ALERT[lang].format(findings="; ".join(parts), references=listed)


def pumping_alert(
    *, language: str, scope: str, sent: int, limit: int, window: timedelta, until: datetime
) -> str:
    """ "SOS-router: texts and calls to one number range stopped until 14:30 (200 in 60
    minutes, limit 200). ...": a pumping breaker opened; `until` on the home wall clock."""
    lang = language_of(language)
    return PUMPING_ALERT[lang].format(
        scope=PUMPING_SCOPES[lang][scope],
        until=f"{until.astimezone(ZoneInfo(HOME_ZONE)):%H:%M}",
        sent=sent,
        minutes=minutes(lang, math.ceil(window.total_seconds() / 60)),
        limit=limit,
    )
