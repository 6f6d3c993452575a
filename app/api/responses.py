"""The error answers in the OpenAPI description, as `app/errors.py` writes them.

Every route declares each status it can answer (`responses=errors(404, 409)`), so a client (and
the schemathesis run in tests/security/) can rely on the description: a status or body it does
not list is a bug. Every error body is `ErrorBody`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from routing.staff.schemas import StaffRef

Responses = dict[int | str, dict[str, Any]]


class FieldProblem(BaseModel):
    field: str | None
    message: str


class Error(BaseModel):
    code: str = Field(description="machine-readable, e.g. `validation_error`, `not_found`")
    message: str
    field: str | None = Field(description="the request field at fault, when there is one")
    details: list[FieldProblem] | None = Field(
        None, description="422 only: every invalid field, the first one also in `field`"
    )
    acknowledged_by: StaffRef | None = Field(
        None, description="409 `already_acknowledged` only: who holds the report"
    )


class ErrorBody(BaseModel):
    error: Error


RETRY_AFTER = {
    "Retry-After": {
        "description": "seconds to wait before trying again",
        "schema": {"type": "string"},
    }
}
_STATUSES: Responses = {
    400: {"description": "the body could not be read (it is not UTF-8)"},
    401: {
        "description": "no bearer token, or not a valid one",
        "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
    },
    403: {"description": "the token's role may not do this"},
    404: {"description": "no such object (or not yours)"},
    409: {"description": "the object's state does not allow this (named in the message)"},
    413: {"description": "the request body is too large"},
    422: {"description": "invalid request; the field is named in `error.field`"},
    429: {
        "description": "too many requests: try again after `Retry-After`",
        "headers": RETRY_AFTER,
    },
    503: {
        "description": "temporarily unavailable (the database): retry after `Retry-After`",
        "headers": RETRY_AFTER,
    },
}


def errors(*statuses: int) -> Responses:
    """The OpenAPI `responses` entries for these error statuses, each with an `ErrorBody`."""
    return {status: {**_STATUSES[status], "model": ErrorBody} for status in statuses}


# What every `/v1` route can answer: a missing, invalid or wrong-role token, a rate limit, or a
# database that is down. Routes add 404, 409, 413 and 422 where they apply.
API = errors(401, 403, 429, 503)
# A route with a JSON body: unreadable, too large, or invalid.
BODY = errors(400, 413, 422)
