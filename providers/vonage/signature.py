"""Vonage's signed webhooks: `Authorization: Bearer <JWT>`, HS256 with the signature secret.

A request counts as Vonage's when the token verifies with our secret, was issued at most
`max_age_seconds` ago by our clock (a captured request cannot be replayed later), and its
`payload_hash` claim is the SHA-256 of the body exactly as received (the body was not changed).
When we know our `api_key`, the token's `api_key` claim must be ours too: the secret is shared by
every application of the account.

[confirm] Vonage documents `payload_hash` for JSON POST bodies, which is all we ask it to send
(answer and event webhooks use POST). A GET webhook would hash its query parameters instead;
we never configure one.
"""

from __future__ import annotations

import hashlib
import hmac
import warnings
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import jwt
from jwt.warnings import InsecureKeyLengthWarning

MAX_AGE_SECONDS = 300
CLOCK_SKEW_SECONDS = 60


def claims(
    authorization: str,
    body: bytes,
    *,
    secret: str,
    now: datetime,
    api_key: str = "",
    max_age_seconds: int = MAX_AGE_SECONDS,
) -> Mapping[str, Any] | None:
    """The verified claims of a webhook, or `None` when it is not Vonage's (or is stale)."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip() or not secret:
        return None
    try:
        with warnings.catch_warnings():
            # Vonage chooses the secret's length; a short one still verifies, so do not fail.
            warnings.simplefilter("ignore", InsecureKeyLengthWarning)
            found: dict[str, Any] = jwt.decode(
                token.strip(),
                secret,
                algorithms=["HS256"],
                # We check the times ourselves, against the service's clock.
                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
            )
    except jwt.InvalidTokenError:
        return None
    issued = found.get("iat")
    if not isinstance(issued, int | float) or isinstance(issued, bool):
        return None
    age = now.timestamp() - issued
    if age > max_age_seconds or age < -CLOCK_SKEW_SECONDS:
        return None
    expires = found.get("exp")
    if isinstance(expires, int | float) and expires < now.timestamp() - CLOCK_SKEW_SECONDS:
        return None
    given = found.get("payload_hash")
    if not isinstance(given, str) or not hmac.compare_digest(
        given.lower(), hashlib.sha256(body).hexdigest()
    ):
        return None
    if api_key and found.get("api_key", api_key) != api_key:
        return None
    return found
