"""X-Twilio-Signature: Twilio's published test vectors, our URL rule, and the twilio package."""

import base64
import hashlib
import hmac

import pytest
from twilio.request_validator import RequestValidator

from providers.twilio import signature

TOKEN = "12345"
URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+14158675309",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
}
PUBLISHED = "RSOYDt4T1cUTdK1PDd93/VVr8B8="
PUBLISHED_WITH_PORT = "kvajT1Ptam85bY51eRf/AJRuM3w="


def by_hand(token: str, url: str, params: dict[str, str]) -> str:
    """The algorithm as documented: URL, then each name+value sorted by name; HMAC-SHA1; base64."""
    message = url + "".join(k + params[k] for k in sorted(params))
    digest = hmac.new(token.encode(), message.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def test_published_vectors_are_what_the_algorithm_gives() -> None:
    assert by_hand(TOKEN, URL, PARAMS) == PUBLISHED
    with_port = URL.replace("mycompany.com", "mycompany.com:443")
    assert by_hand(TOKEN, with_port, PARAMS) == PUBLISHED_WITH_PORT
    assert RequestValidator(TOKEN).compute_signature(URL, PARAMS) == PUBLISHED


@pytest.mark.parametrize("given", [PUBLISHED, PUBLISHED_WITH_PORT])
def test_valid_with_or_without_the_default_port(given: str) -> None:
    assert signature.is_valid(TOKEN, URL, PARAMS, given)


@pytest.mark.parametrize(
    ("token", "url", "params", "given"),
    [
        ("54321", URL, PARAMS, PUBLISHED),  # another account's token
        (TOKEN, URL, {**PARAMS, "Digits": "1"}, PUBLISHED),  # a changed parameter
        (TOKEN, URL.replace("https://mycompany.com", "http://internal:8000"), PARAMS, PUBLISHED),
        (TOKEN, URL + "&x=1", PARAMS, PUBLISHED),  # a changed query
        (TOKEN, URL, PARAMS, ""),  # no signature at all
        (TOKEN, URL, PARAMS, "garbage"),
    ],
    ids=["token", "param", "host", "query", "missing", "garbage"],
)
def test_anything_changed_is_refused(
    token: str, url: str, params: dict[str, str], given: str
) -> None:
    assert not signature.is_valid(token, url, params, given)


def test_public_url_keeps_the_raw_path_and_query_exactly() -> None:
    url = signature.public_url(
        "https://sos.example.nl/", b"/webhooks/twilio/voice/category", b"lang=nl&try=1%2B"
    )
    assert url == "https://sos.example.nl/webhooks/twilio/voice/category?lang=nl&try=1%2B"
    assert signature.public_url("https://sos.example.nl", b"/x", b"") == "https://sos.example.nl/x"
