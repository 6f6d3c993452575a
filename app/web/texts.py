"""The customer pages' words, in Dutch and English, and how a page picks its language.

Plain words for someone who is frightened: short sentences, no jargon. `{minutes}` is the promise
(SOS_SLA_SECONDS in minutes); `{name}` the first name of the colleague who accepted.
"""

from __future__ import annotations

LANGUAGES = ("nl", "en")
DEFAULT = "nl"

TEXTS: dict[str, dict[str, str]] = {
    "nl": {
        "switch_to": "en",
        "switch_label": "English",
        "form_title": "Melding van fraude of misbruik",
        "form_intro": "Vertel ons wat er aan de hand is. Binnen {minutes} minuten belt een "
        "collega u terug.",
        "category": "Wat is er gebeurd?",
        "cat_fraud": "Ik denk dat ik opgelicht word of geld kwijt ben",
        "cat_account_takeover": "Iemand anders zit in mijn account",
        "cat_lost_card": "Mijn pas is kwijt of gestolen",
        "cat_other": "Iets anders",
        "phone": "Op welk nummer kunnen we u bellen?",
        "phone_hint": "Bijvoorbeeld 06 12345678 of +31 6 12345678",
        "language": "In welke taal wilt u geholpen worden?",
        "lang_nl": "Nederlands",
        "lang_en": "Engels",
        "description": "Wat is er gebeurd? (mag u leeg laten)",
        "description_hint": "Geef nooit codes, wachtwoorden of uw pincode.",
        "submit": "Verstuur: bel mij terug",
        "errors_intro": "Controleer het veld met de melding hieronder.",
        "err_category": "Kies wat er is gebeurd.",
        "err_phone_missing": "Vul het nummer in waarop we u kunnen bellen.",
        "err_phone": "Dit nummer klopt niet. Gebruik bijvoorbeeld 06 12345678 of +31 6 12345678.",
        "err_language": "Kies Nederlands of Engels.",
        "err_description": "Dit is te lang: gebruik hoogstens 2000 tekens.",
        "forbidden_title": "Uw melding is niet verstuurd",
        "forbidden_text": "Dit formulier is verlopen of kwam niet van onze website. Er is niets "
        "verstuurd. Open het formulier opnieuw en probeer het nog een keer.",
        "open_form": "Open het formulier",
        "limited_title": "Te veel meldingen",
        "limited_text": "Vanaf deze verbinding zijn in korte tijd veel meldingen gedaan. Probeer "
        "het over {minutes} minuten opnieuw, of bel direct met uw bank.",
        "too_large": "Dit formulier is te groot.",
        "status_title": "Uw melding",
        "reference": "Uw referentie",
        "reference_hint": "Noem deze code als u met ons praat.",
        "now": "Wat gebeurt er nu",
        "state_paging": "We bellen een collega die u gaat helpen.",
        "state_missed": "Het duurt langer dan we beloofden, het spijt ons. We blijven collega's "
        "bellen. Houd uw telefoon bij de hand.",
        "state_accepted": "{name} heeft uw melding en belt u zo.",
        "state_accepted_anon": "Een collega heeft uw melding en belt u zo.",
        "state_resolved": "Uw melding is afgehandeld.",
        "promise": "Onze belofte: binnen {minutes} minuten helpt een mens u",
        "time_left": "Nog {time}",
        "time_over": "De {minutes} minuten zijn voorbij",
        "we_call": "We bellen u op {phone}.",
        "meanwhile": "Wat kunt u nu al doen",
        "tip_block": "Blokkeer uw pas in de app van uw bank, als u dat nog niet deed.",
        "tip_codes": "Deel nooit codes, wachtwoorden of uw pincode, ook niet met iemand die "
        "zegt dat hij van de bank is. Wij vragen daar nooit om.",
        "tip_safe_account": "Maak geen geld over naar een 'veilige rekening': die bestaat niet.",
        "tip_phone": "Houd uw telefoon vrij en bij de hand.",
        "tip_112": "Bent u in direct gevaar? Bel 112.",
        "noscript": "Ververs deze pagina om te zien wat er nu gebeurt.",
        "updates": "Deze pagina werkt zichzelf bij.",
        "unknown_title": "Deze pagina bestaat niet",
        "unknown_text": "Controleer de link. Wilt u iets melden? Open dan het formulier.",
    },
    "en": {
        "switch_to": "nl",
        "switch_label": "Nederlands",
        "form_title": "Report fraud or misuse",
        "form_intro": "Tell us what is going on. A colleague will call you back within {minutes} "
        "minutes.",
        "category": "What happened?",
        "cat_fraud": "I think I am being scammed or have lost money",
        "cat_account_takeover": "Someone else is in my account",
        "cat_lost_card": "My card is lost or stolen",
        "cat_other": "Something else",
        "phone": "Which number can we call you on?",
        "phone_hint": "For example 06 12345678 or +31 6 12345678",
        "language": "Which language would you like to be helped in?",
        "lang_nl": "Dutch",
        "lang_en": "English",
        "description": "What happened? (you may leave this empty)",
        "description_hint": "Never give codes, passwords or your PIN.",
        "submit": "Send: call me back",
        "errors_intro": "Please check the field with the message below.",
        "err_category": "Choose what happened.",
        "err_phone_missing": "Enter the number we can call you on.",
        "err_phone": "This number does not look right. For example 06 12345678 or +31 6 12345678.",
        "err_language": "Choose Dutch or English.",
        "err_description": "This is too long: use at most 2000 characters.",
        "forbidden_title": "Your report was not sent",
        "forbidden_text": "This form has expired or did not come from our website. Nothing was "
        "sent. Please open the form again and try once more.",
        "open_form": "Open the form",
        "limited_title": "Too many reports",
        "limited_text": "Many reports were sent from this connection in a short time. Try again "
        "in {minutes} minutes, or call your bank directly.",
        "too_large": "This form is too large.",
        "status_title": "Your report",
        "reference": "Your reference",
        "reference_hint": "Mention this code when you talk to us.",
        "now": "What is happening now",
        "state_paging": "We are calling a colleague who will help you.",
        "state_missed": "This is taking longer than we promised. We are sorry. We keep calling "
        "colleagues. Please keep your phone nearby.",
        "state_accepted": "{name} has your case and will call you shortly.",
        "state_accepted_anon": "A colleague has your case and will call you shortly.",
        "state_resolved": "Your case is closed.",
        "promise": "Our promise: a human helps you within {minutes} minutes",
        "time_left": "{time} left",
        "time_over": "The {minutes} minutes have passed",
        "we_call": "We will call you on {phone}.",
        "meanwhile": "What you can do now",
        "tip_block": "Block your card in your bank's app, if you have not done so yet.",
        "tip_codes": "Never share codes, passwords or your PIN, not even with someone who says "
        "they are from the bank. We never ask for them.",
        "tip_safe_account": "Do not move money to a 'safe account': there is no such thing.",
        "tip_phone": "Keep your phone free and nearby.",
        "tip_112": "In immediate danger? Call 112.",
        "noscript": "Reload this page to see what is happening now.",
        "updates": "This page updates by itself.",
        "unknown_title": "This page does not exist",
        "unknown_text": "Please check the link. Want to report something? Open the form.",
    },
}


def pick(query: str | None, accept_language: str | None = None) -> str:
    """`?lang=` when it names a language we have; else the best of `Accept-Language`; else Dutch."""
    if query in LANGUAGES:
        return query
    best, best_q = DEFAULT, 0.0
    for part in (accept_language or "").split(",")[:20]:
        tag, _, params = part.strip().partition(";")
        lang = tag.strip().lower().split("-")[0]
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if lang in LANGUAGES and q > best_q:
            best, best_q = lang, q
    return best


def texts(lang: str) -> dict[str, str]:
    return TEXTS[lang if lang in TEXTS else DEFAULT]


# The accept-link page, in the paged staff member's language.
ACK_TEXTS: dict[str, dict[str, str]] = {
    "nl": {
        "reference": "Referentie",
        "reported": "Gemeld",
        "ago": "geleden",
        "promise": "Belofte",
        "left": "{time} over",
        "missed": "{time} geleden gemist",
        "accept": "Aannemen: ik help deze klant",
        "only_button": "Deze pagina openen verandert niets. Alleen de knop neemt de melding aan.",
        "accepted_title": "Jij hebt melding",
        "accepted_calling": "We bellen je nu om je met de klant te verbinden. "
        "Houd je telefoon bij de hand.",
        "accepted_fallback": "Komt die oproep niet, bel de klant dan zelf:",
        "never_codes": "Vraag de klant nooit om codes of wachtwoorden.",
        "taken_title": "Al aangenomen",
        "taken": "{holder} heeft melding {reference}. Dank je.",
        "used_title": "Deze link is al gebruikt",
        "used": "Elke link werkt één keer.",
        "expired_title": "Deze link is verlopen",
        "expired": "Links werken {lifetime} minuten.",
        "unknown_title": "Deze link kennen we niet",
    },
    "en": {
        "reference": "Reference",
        "reported": "Reported",
        "ago": "ago",
        "promise": "Promise",
        "left": "{time} left",
        "missed": "missed {time} ago",
        "accept": "Accept: I will help this customer",
        "only_button": "Opening this page changes nothing. Only the button accepts.",
        "accepted_title": "You have report",
        "accepted_calling": "We are calling you now to connect you to the customer. "
        "Stay near your phone.",
        "accepted_fallback": "If that call does not come, call the customer yourself:",
        "never_codes": "Never ask the customer for codes or passwords.",
        "taken_title": "Already accepted",
        "taken": "{holder} has report {reference}. Thank you.",
        "used_title": "This link was already used",
        "used": "Each accept link works once.",
        "expired_title": "This link has expired",
        "expired": "Accept links last {lifetime} minutes.",
        "unknown_title": "This link is not known",
    },
}


# The staff console, in the signed-in staff member's language.
CONSOLE_TEXTS: dict[str, dict[str, str]] = {
    "nl": {
        "console": "Console voor medewerkers",
        "token": "Jouw medewerkerstoken",
        "sign_in": "Inloggen",
        "refused": "Met dit token kun je niet inloggen op de console.",
        "open_reports": "Open meldingen",
        "promise_nav": "De belofte",
        "sign_out": "Uitloggen",
        "nothing_open": "Niets open. De console ververst elke 10 seconden.",
        "old": "oud",
        "left": "{time} over",
        "over": "{time} geleden gemist",
        "accepted_by": "Aangenomen door {name}",
        "accept": "Aannemen",
        "resolve": "Afhandelen",
        "page_line": "{channel} naar {name}: {state}",
        "report": "Melding",
        "status": "Status",
        "category": "Soort",
        "channel": "Kanaal",
        "received": "Ontvangen",
        "promise": "Belofte",
        "met": "gehaald",
        "missed": "gemist",
        "open": "open",
        "timeline": "Tijdlijn",
        "sla_title": "De belofte, afgelopen 30 dagen",
        "reports": "Meldingen",
        "kept": "Gehaald",
        "kept_share": "Deel gehaald",
        "kept_per_day": "Gehaald per dag",
        "time_to_accept": "Tijd tot aannemen",
        "download": "Download het SLA-logboek (CSV)",
        "form_expired": "Het formulier is verlopen. Probeer het opnieuw.",
        "not_staff": "Deze login hoort niet bij een medewerker: aannemen of afhandelen kan niet.",
        "no_report": "Deze melding bestaat niet.",
        "back": "Terug naar de console",
        "phone_nav": "Mijn telefoon",
        "phone_title": "Je telefoonnummer controleren",
        "phone_number": "Nummer",
        "phone_verified": "Gecontroleerd op {at} UTC.",
        "phone_unverified": "Nog niet gecontroleerd. Vraag een code aan en vul hem hieronder in.",
        "send_sms": "Stuur me een code per sms",
        "send_call": "Bel me met de code",
        "code_label": "Code (6 cijfers)",
        "confirm_code": "Bevestigen",
        "code_sent": "De code is onderweg. Hij werkt 10 minuten.",
        "phone_verified_now": "Je telefoon is gecontroleerd.",
        "code_wrong": "Die code klopt niet. Probeer het nog eens.",
        "code_void": "Deze code werkt niet meer. Vraag een nieuwe code aan.",
        "code_format": "Vul de 6 cijfers van de code in.",
        "code_no_sms": "Dit nummer kan geen sms ontvangen. Laat je bellen met de code.",
        "code_too_many": "Je hebt veel codes aangevraagd. Probeer het over een uur opnieuw.",
    },
    "en": {
        "console": "Staff console",
        "token": "Your staff token",
        "sign_in": "Sign in",
        "refused": "That token cannot sign in to the console.",
        "open_reports": "Open reports",
        "promise_nav": "The promise",
        "sign_out": "Sign out",
        "nothing_open": "Nothing open. The console refreshes every 10 seconds.",
        "old": "old",
        "left": "{time} left",
        "over": "missed {time} ago",
        "accepted_by": "Accepted by {name}",
        "accept": "Accept",
        "resolve": "Resolve",
        "page_line": "{channel} to {name}: {state}",
        "report": "Report",
        "status": "Status",
        "category": "Category",
        "channel": "Channel",
        "received": "Received",
        "promise": "Promise",
        "met": "met",
        "missed": "missed",
        "open": "open",
        "timeline": "Timeline",
        "sla_title": "The promise, last 30 days",
        "reports": "Reports",
        "kept": "Kept",
        "kept_share": "Kept share",
        "kept_per_day": "Kept per day",
        "time_to_accept": "Time to acceptance",
        "download": "Download the SLA log (CSV)",
        "form_expired": "The form expired. Please try again.",
        "not_staff": "This sign-in is not a staff member: it cannot accept or resolve.",
        "no_report": "No such report.",
        "back": "Back to the console",
        "phone_nav": "My phone",
        "phone_title": "Verify your phone number",
        "phone_number": "Number",
        "phone_verified": "Verified on {at} UTC.",
        "phone_unverified": "Not verified yet. Ask for a code and enter it below.",
        "send_sms": "Text me a code",
        "send_call": "Call me with the code",
        "code_label": "Code (6 digits)",
        "confirm_code": "Confirm",
        "code_sent": "The code is on its way. It works for 10 minutes.",
        "phone_verified_now": "Your phone is verified.",
        "code_wrong": "That code is not right. Please try again.",
        "code_void": "This code no longer works. Ask for a new code.",
        "code_format": "Enter the 6 digits of the code.",
        "code_no_sms": "This number cannot receive text messages. Ask for a call instead.",
        "code_too_many": "You asked for many codes. Try again in an hour.",
    },
}
