"""Vonage's signed webhooks: only a token signed with our secret, issued moments ago by our clock,
over exactly this body, counts as Vonage's."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from providers.vonage import signature
from tests.fakes.vonage import API_KEY, SIGNATURE_SECRET, signed_headers

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
BODY = b'{"uuid":"c0ffee","status":"answered"}'


def header(body: bytes = BODY, *, issued_at: datetime = NOW, secret: str = SIGNATURE_SECRET) -> str:
    return signed_headers(
        body, secret=secret, issued_at=issued_at, api_key=API_KEY, application_id="app"
    )["Authorization"]


def check(authorization: str, body: bytes = BODY, api_key: str = "") -> object:
    return signature.claims(authorization, body, secret=SIGNATURE_SECRET, now=NOW, api_key=api_key)


def test_a_webhook_signed_by_vonage_checks_out() -> None:
    claims = check(header(), api_key=API_KEY)
    assert isinstance(claims, dict)
    assert claims["payload_hash"] == hashlib.sha256(BODY).hexdigest()


@pytest.mark.parametrize(
    ("authorization", "body"),
    [
        ("", BODY),  # unsigned
        ("Basic dXNlcjpwYXNz", BODY),  # another scheme
        (header(secret="someone-else-s-secret-0123456789abcdef0123"), BODY),  # forged
        (header(), b'{"uuid":"c0ffee","status":"completed"}'),  # the body was changed
        (header(issued_at=NOW - timedelta(seconds=301)), BODY),  # a replay, minutes later
        (header(issued_at=NOW + timedelta(minutes=5)), BODY),  # issued in the future
        ("Bearer not.a.token", BODY),
    ],
)
def test_anything_else_is_refused(authorization: str, body: bytes) -> None:
    assert check(authorization, body) is None


def test_a_token_without_a_payload_hash_or_with_alg_none_is_refused() -> None:
    no_hash = jwt.encode({"iat": int(NOW.timestamp())}, SIGNATURE_SECRET, algorithm="HS256")
    unsigned = jwt.encode(
        {"iat": int(NOW.timestamp()), "payload_hash": hashlib.sha256(BODY).hexdigest()},
        None,
        algorithm="none",
    )
    assert check(f"Bearer {no_hash}") is None
    assert check(f"Bearer {unsigned}") is None


def test_another_accounts_api_key_is_refused_when_ours_is_known() -> None:
    assert check(header(), api_key="other999") is None
    assert check(header()) is not None  # not configured: the secret alone decides
