"""The hash chain over the audit events: what a seal's hash is computed from.

Seal n covers one event: `hash_n = SHA-256(hash_{n-1} ‖ canonical(event))`, with 64 zeros before
the first. `canonical` is the event row as compact JSON with sorted keys (UTF-8), so the same row
gives the same bytes on every backend and in every process; change any column of a sealed event,
or the order or number of seals, and the chain no longer adds up.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC

from routing.audit.models import AuditEvent

GENESIS = "0" * 64


def canonical(event: AuditEvent) -> bytes:
    """The bytes of `event` that its seal covers: every column."""
    return json.dumps(
        {
            "id": event.id,
            "report_id": event.report_id,
            "at": event.at.astimezone(UTC).isoformat(timespec="microseconds"),
            "type": event.type,
            "actor": event.actor,
            "detail": event.detail,
            "data": event.data,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()


def link(prev_hash: str, event: AuditEvent) -> str:
    """The hash of the seal that follows `prev_hash` and covers `event` (hex)."""
    return hashlib.sha256(prev_hash.encode() + canonical(event)).hexdigest()
