"""`X-Slack-Signature` checks: `v0=` + hex HMAC-SHA256(signing secret, `v0:{ts}:{raw body}`).

The timestamp (`X-Slack-Request-Timestamp`, whole seconds) is signed with the body and must be
within `MAX_AGE_SECONDS` of `now` either way, so a captured request cannot be replayed later and a
signed body cannot be moved to another timestamp. `now` is passed in: nothing here reads a clock.
Comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import re

VERSION = "v0"
MAX_AGE_SECONDS = 300
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


def compute(secret: str, timestamp: str, body: bytes) -> str:
    """The signature Slack sends for `body` at `timestamp`."""
    message = f"{VERSION}:{timestamp}:".encode() + body
    digest = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return f"{VERSION}={digest}"


def problem(*, secret: str, timestamp: str, body: bytes, signature: str, now: float) -> str | None:
    """Why the request is not Slack's (`None` when it is). `now` is in Unix seconds."""
    if not secret:
        return "no Slack signing secret is configured"
    if not signature or not timestamp:
        return "the Slack signature or timestamp is missing"
    if not _TIMESTAMP.fullmatch(timestamp):
        return "the Slack timestamp is not a number of seconds"
    if abs(now - int(timestamp)) > MAX_AGE_SECONDS:
        return "the Slack timestamp is too old or in the future"
    if not hmac.compare_digest(compute(secret, timestamp, body).encode(), signature.encode()):
        return "invalid Slack signature"
    return None


def is_valid(*, secret: str, timestamp: str, body: bytes, signature: str, now: float) -> bool:
    return (
        problem(secret=secret, timestamp=timestamp, body=body, signature=signature, now=now) is None
    )
