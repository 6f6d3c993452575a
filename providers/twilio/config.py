from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TwilioConfig:
    """Everything the Twilio adapters need; built from settings in `app/`."""

    account_sid: str
    auth_token: str
    from_number: str
    public_base_url: str
    api_base: str = "https://api.twilio.com"
    ring_seconds: int = 25
    sms_validity_seconds: int = 300

    def url(self, path: str) -> str:
        """An absolute callback URL under the public base (Twilio needs absolute URLs)."""
        return self.public_base_url.rstrip("/") + path
