"""The application JWT that authenticates our REST requests to Vonage.

Vonage accepts a JWT signed RS256 with the application's private key, carrying `application_id`,
`iat`, `jti` and `exp`. A fresh short-lived token goes on every request: signing costs about a
millisecond, and nothing long-lived can leak from a log or a proxy.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Generator

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey


def load_private_key(pem: str) -> RSAPrivateKey:
    """The application's RSA key; `ValueError` when `pem` is not one (so a typo stops startup)."""
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise ValueError("not a PEM private key without a password") from exc
    if not isinstance(key, RSAPrivateKey):
        raise ValueError("not an RSA private key (Vonage signs with RS256)")
    return key


class ApplicationJwt(httpx.Auth):
    """`Authorization: Bearer <JWT>` on every request, signed with the application's key.

    Time is the wall clock (`time.time`), not the service's clock: Vonage checks `iat` and `exp`
    against its own real time. Tests may pass `now`.
    """

    def __init__(
        self,
        application_id: str,
        private_key: str,
        *,
        lifetime_seconds: int = 300,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.application_id = application_id
        self._key = load_private_key(private_key)
        self._lifetime = lifetime_seconds
        self._now = now

    def token(self) -> str:
        issued = int(self._now())
        claims = {
            "application_id": self.application_id,
            "iat": issued,
            "jti": str(uuid.uuid4()),
            "exp": issued + self._lifetime,
        }
        return jwt.encode(claims, self._key, algorithm="RS256")

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.token()}"
        yield request
