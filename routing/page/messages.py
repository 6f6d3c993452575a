"""What a paged staff member reads or hears, per language. Never the customer's data: only the kind
of emergency, its reference and how to accept. A value put into a text (a colleague's name) is
one plain line (`guard.one_line`)."""

from __future__ import annotations

from routing.guard import one_line

CATEGORY_NAMES = {
    "nl": {
        "fraud": "fraude",
        "account_takeover": "overgenomen account",
        "lost_card": "verloren of gestolen pas",
        "other": "noodmelding",
    },
    "en": {
        "fraud": "fraud",
        "account_takeover": "account takeover",
        "lost_card": "lost or stolen card",
        "other": "emergency",
    },
}

PAGE_TEXT = {
    "nl": "SOS {category}, melding {reference}. Antwoord 1 om de klant te helpen.",
    "en": "SOS {category}, report {reference}. Reply 1 to help the customer.",
}


# One SMS for several open reports (a wave): how many, and that `1` takes the most urgent.
BUNDLE_TEXT = {
    "nl": "SOS: {count} open noodmeldingen, antwoord 1 om de oudste aan te nemen.",
    "en": "SOS: {count} open emergencies, reply 1 to take the oldest.",
}


def staff_language(languages: list[str]) -> str:
    return next((lang for lang in languages if lang in PAGE_TEXT), "nl")


def page_text(*, language: str, category: str, reference: str) -> str:
    lang = language if language in PAGE_TEXT else "nl"
    name = CATEGORY_NAMES[lang].get(category, category)
    return PAGE_TEXT[lang].format(category=name, reference=reference)


def bundle_text(*, language: str, count: int) -> str:
    return BUNDLE_TEXT[_lang(language)].format(count=count)


def _lang(language: str) -> str:
    return language if language in PAGE_TEXT else "nl"


def spelled(reference: str) -> str:
    """`K7Q4M2` → `K, 7, Q, 4, M, 2`: read out one character at a time."""
    return ", ".join(reference)


VOICE_PROMPT = {
    "nl": "Dit is een SOS melding van de bank: {category}. Referentie {reference}. "
    "Druk op 1 om de klant te helpen.",
    "en": "This is an SOS report from the bank: {category}. Reference {reference}. "
    "Press 1 to help the customer.",
}
VOICE_CONNECTED = {
    "nl": "Dank je. Je hebt deze melding aangenomen. We verbinden je nu met de klant.",
    "en": "Thank you. You have accepted this report. Connecting you to the customer now.",
}
VOICE_TAKEN = {
    "nl": "Deze melding is al aangenomen door {name}. Dank je.",
    "en": "This report has already been accepted by {name}. Thank you.",
}
VOICE_NO_KEY = {
    "nl": "We hebben geen toets gehoord. We bellen een collega. Tot ziens.",
    "en": "We did not hear a key. We are calling a colleague. Goodbye.",
}
SMS_ACCEPTED = {
    "nl": "Aangenomen: melding {reference} ({category}). Jij helpt deze klant.",
    "en": "Accepted: report {reference} ({category}). You are helping this customer.",
}
SMS_TAKEN = {
    "nl": "Melding {reference} is al aangenomen door {name}.",
    "en": "Report {reference} has already been accepted by {name}.",
}
SMS_NOTHING_OPEN = {
    "nl": "Er staat geen open melding voor je klaar.",
    "en": "There is no open report waiting for you.",
}
SMS_HELP = {
    "nl": "Antwoord 1 om de oudste open melding aan te nemen, of ACK gevolgd door de referentie.",
    "en": "Reply 1 to accept the oldest open report, or ACK followed by its reference.",
}
SMS_RESUMED = {
    "nl": "SMS-meldingen staan weer aan.",
    "en": "SMS pages are on again.",
}


def voice_prompt(*, language: str, category: str, reference: str) -> str:
    lang = _lang(language)
    name = CATEGORY_NAMES[lang].get(category, category)
    return VOICE_PROMPT[lang].format(category=name, reference=spelled(reference))


def text(table: dict[str, str], language: str, **values: str) -> str:
    return table[_lang(language)].format(**{k: one_line(v) for k, v in values.items()})
