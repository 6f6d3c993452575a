"""`X-Twilio-Signature` checks, with the `twilio` package's validator.

The URL is what Twilio requested: our configured public base URL plus the raw path and query,
never the Host or X-Forwarded-* headers a proxy could set. The validator also tries the URL with
and without the default port, as Twilio is not consistent about it.
"""

from __future__ import annotations

from collections.abc import Mapping

from twilio.request_validator import RequestValidator


def public_url(public_base_url: str, raw_path: bytes, query_string: bytes) -> str:
    url = public_base_url.rstrip("/") + raw_path.decode("latin-1")
    return url + ("?" + query_string.decode("latin-1") if query_string else "")


def is_valid(auth_token: str, url: str, params: Mapping[str, str], signature: str) -> bool:
    if not signature:
        return False
    return bool(RequestValidator(auth_token).validate(url, dict(params), signature))
