from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class VonageConfig:
    """Everything the Vonage adapters need; built from settings in `app/`.

    `private_key` is the application's PEM key (it signs our REST requests); `signature_secret`
    is the account's secret Vonage signs its webhooks with; `api_key`, when set, must match the
    `api_key` claim of those webhooks.
    """

    application_id: str
    private_key: str
    signature_secret: str
    from_number: str
    public_base_url: str
    api_key: str = ""
    api_base: str = "https://api.nexmo.com"
    ring_seconds: int = 25
    sms_ttl_seconds: int = 300

    def url(self, path: str) -> str:
        """An absolute callback URL under the public base (Vonage needs absolute URLs)."""
        return self.public_base_url.rstrip("/") + path


def msisdn(e164: str) -> str:
    """A number as Vonage writes it: E.164 without the leading `+`."""
    return e164.removeprefix("+")


def e164(number: str) -> str:
    """A number Vonage sent us (`31612345678`) as we store it (`+31612345678`); anything that is
    not all digits (an alphanumeric sender) is returned as it came."""
    digits = number.removeprefix("+")
    return "+" + digits if digits.isdigit() else number
