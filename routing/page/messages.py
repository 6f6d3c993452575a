"""What a paged staff member reads or hears, per language. Never the customer's data: only the kind
of emergency, its reference and how to accept."""

from __future__ import annotations

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


def staff_language(languages: list[str]) -> str:
    return next((lang for lang in languages if lang in PAGE_TEXT), "nl")


def page_text(*, language: str, category: str, reference: str) -> str:
    lang = language if language in PAGE_TEXT else "nl"
    name = CATEGORY_NAMES[lang].get(category, category)
    return PAGE_TEXT[lang].format(category=name, reference=reference)
