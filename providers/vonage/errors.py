"""Turning Vonage REST answers into the port's error classes, by the same rules as Twilio's.

- 429: throttled, not processed; safe to retry after `Retry-After`.
- Other 4xx (an invalid number, a rejected sender, a bad token): retrying cannot help.
- 5xx, timeouts, broken connections after sending: the call or message may exist. Outcome unknown.
- A connection that never opened: nothing was sent; safe to retry.

Vonage answers errors as RFC 7807 problem details: `{"type": ".../api-errors/messages#1120",
"title": "...", "detail": "..."}`; the part of `type` after `#` is the closest thing to a code.
"""

from __future__ import annotations

import httpx

from providers.base import (
    OutcomeUnknownError,
    PermanentProviderError,
    ProviderError,
    TemporaryProviderError,
)


def from_response(response: httpx.Response) -> ProviderError:
    code: str | None = None
    message = response.reason_phrase
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        _, mark, fragment = str(body.get("type") or "").rpartition("#")
        code = fragment if mark and fragment else None
        parts = [str(body[key]) for key in ("title", "detail") if body.get(key)]
        message = ": ".join(parts) or message
    detail = f"vonage {response.status_code}" + (f" / {code}" if code else "") + f": {message}"
    if response.status_code == 429:
        retry_after = _seconds(response.headers.get("Retry-After"))
        return TemporaryProviderError(detail, code=code, retry_after=retry_after)
    if response.status_code >= 500:
        return OutcomeUnknownError(detail, code=code)
    return PermanentProviderError(detail, code=code)


def from_transport(exc: httpx.TransportError) -> ProviderError:
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        return TemporaryProviderError(f"vonage unreachable: {type(exc).__name__}")
    return OutcomeUnknownError(f"vonage: {type(exc).__name__} after sending")


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None
