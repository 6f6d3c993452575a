"""Turning Twilio REST answers into the port's error classes.

- 429 / 20429: not processed, safe to retry after a pause.
- Other 4xx (21211 invalid number, 21610 STOP, 21614 not a mobile, …): rejected; retrying the
  same number cannot help, so the chain moves on.
- 5xx, timeouts, broken connections after sending: the resource may exist. Outcome unknown.
- A connection that never opened: nothing was sent; safe to retry.
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
        code = str(body.get("code")) if body.get("code") is not None else None
        message = str(body.get("message") or message)
    except ValueError:
        pass
    detail = f"twilio {response.status_code}" + (f" / {code}" if code else "") + f": {message}"
    if response.status_code == 429 or code == "20429":
        retry_after = _seconds(response.headers.get("Retry-After"))
        return TemporaryProviderError(detail, code=code, retry_after=retry_after)
    if response.status_code >= 500:
        return OutcomeUnknownError(detail, code=code)
    return PermanentProviderError(detail, code=code)


def from_transport(exc: httpx.TransportError) -> ProviderError:
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        return TemporaryProviderError(f"twilio unreachable: {type(exc).__name__}")
    return OutcomeUnknownError(f"twilio: {type(exc).__name__} after sending")


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None
