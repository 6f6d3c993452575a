"""Errors the domain raises; `app/errors.py` maps them to HTTP in one table.

RoutingError
├── NotFound
├── Forbidden
├── Conflict
│   ├── AlreadyAcknowledged
│   ├── AlreadyResolved
│   └── IdempotencyKeyInUse
├── TooManyRequests           (asked too often: try again later)
└── ValidationFailed          (names the offending field)
"""

from __future__ import annotations


class RoutingError(Exception):
    code = "error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(RoutingError):
    code = "not_found"


class Forbidden(RoutingError):
    code = "forbidden"


class Conflict(RoutingError):
    code = "conflict"


class AlreadyAcknowledged(Conflict):
    code = "already_acknowledged"

    def __init__(self, message: str, *, holder_id: str, holder_name: str) -> None:
        super().__init__(message)
        self.holder_id = holder_id
        self.holder_name = holder_name


class AlreadyResolved(Conflict):
    code = "already_resolved"


class IdempotencyKeyInUse(Conflict):
    code = "idempotency_key_in_use"


class TooManyRequests(RoutingError):
    code = "rate_limited"


class ValidationFailed(RoutingError):
    code = "validation_error"
