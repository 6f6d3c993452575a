"""Every error a client can cause becomes `{"error": {"code", "message", "field"}}` with a 4xx.

The one table from domain errors to HTTP lives here. A database that cannot be reached (down,
restarting, shutting down, out of connections, or not answering a statement in time) is a 503
with `Retry-After`, so clients retry instead of giving up; only a bug is a 500.

An error never echoes what the client sent: validation errors name the field and the rule, never
the `input` (pydantic's own error dicts carry it; they are not passed on), a field path part that
is not a plain name (an unknown key the client made up, which may be a phone number or a sentence)
is shown as `?`, and a phone number in any message is masked as in the logs.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException
from starlette.routing import Match

from routing.errors import (
    AlreadyAcknowledged,
    Conflict,
    Forbidden,
    NotFound,
    RoutingError,
    TooManyRequests,
    ValidationFailed,
)
from routing.phone import mask_numbers

log = logging.getLogger(__name__)

STATUS: list[tuple[type[RoutingError], int]] = [
    (NotFound, 404),
    (Forbidden, 403),
    (Conflict, 409),
    (ValidationFailed, 422),
    (TooManyRequests, 429),
]

HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    503: "unavailable",
}


# A body with thousands of bad fields gets the first few named, not an answer larger than itself.
MAX_DETAILS = 20


def error_body(code: str, message: str, field: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": mask_numbers(message), "field": field, **extra}}


# A field path part that may be shown: a name from our schemas, or a list index.
_PLAIN_PART = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}|[0-9]{1,6}")


def _field(loc: tuple[int | str, ...]) -> str | None:
    parts = [p if _PLAIN_PART.fullmatch(p) else "?" for p in map(str, loc)]
    if parts and parts[0] in ("body", "query", "path", "header"):
        where, parts = parts[0], parts[1:]
        if not parts:
            return "body" if where == "body" else None
        if where == "header":
            return "-".join(w.capitalize() for w in parts[0].split("-"))
    return ".".join(parts) or None


async def _routing_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RoutingError)
    status = next((s for cls, s in STATUS if isinstance(exc, cls)), 400)
    extra: dict[str, Any] = {}
    if isinstance(exc, AlreadyAcknowledged):
        extra["acknowledged_by"] = {"id": exc.holder_id, "name": exc.holder_name}
    return JSONResponse(error_body(exc.code, exc.message, exc.field, **extra), status_code=status)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    details = [
        {
            "field": _field(tuple(e.get("loc", ()))),
            "message": mask_numbers(str(e.get("msg", "invalid"))),
        }
        for e in errors[:MAX_DETAILS]
    ]
    first = details[0] if details else {"field": None, "message": "invalid request"}
    invalid_json = any(e.get("type") == "json_invalid" for e in errors)
    message = "the body is not valid JSON" if invalid_json else str(first["message"])
    if first["field"] and not invalid_json:
        message = f"{first['field']}: {message}"
    return JSONResponse(
        error_body(
            "invalid_json" if invalid_json else "validation_error",
            message,
            "body" if invalid_json else first["field"],
            details=details,
        ),
        status_code=422,
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    code = HTTP_CODES.get(exc.status_code, "error")
    headers = exc.headers
    if exc.status_code == 405:
        headers = {**(headers or {}), "Allow": _allowed_methods(request)}
    return JSONResponse(
        error_body(code, str(exc.detail)), status_code=exc.status_code, headers=headers
    )


METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def _allowed_methods(request: Request) -> str:
    """Every method some route takes at this path. Starlette names only the first route's, and
    `GET /v1/staff` and `POST /v1/staff` are two routes."""
    routes = request.app.router.routes
    return ", ".join(
        method
        for method in METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes
        )
    )


async def _database_unavailable(_: Request, exc: Exception) -> JSONResponse:
    log.error("database unavailable: %s", type(exc).__name__)
    return JSONResponse(
        error_body("unavailable", "temporarily unavailable; retry shortly"),
        status_code=503,
        headers={"Retry-After": "2"},
    )


# SQLSTATE classes that say the database is not there right now, rather than that the query was
# wrong: connection exception (08), insufficient resources (53, e.g. too many connections) and
# operator intervention (57: shutting down, "not yet accepting connections" while it recovers).
# asyncpg reports these as plain database errors, not as OperationalError.
UNAVAILABLE_SQLSTATES = ("08", "53", "57")


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DBAPIError)
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if exc.connection_invalidated or str(sqlstate or "").startswith(UNAVAILABLE_SQLSTATES):
        return await _database_unavailable(request, exc)
    return await _unexpected(request, exc)


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return JSONResponse(error_body("internal_error", "internal error"), status_code=500)


def install(app: FastAPI) -> None:
    app.add_exception_handler(RoutingError, _routing_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    # Only "cannot reach the database" is worth a retry; a data or integrity error is a bug.
    # TimeoutError: a statement the database did not answer in time (app/db.py closed its
    # connection), or a connection that could not be opened in time.
    db_errors = (OperationalError, InterfaceError, PoolTimeout, TimeoutError, ConnectionError)
    for db_error in (*db_errors, OSError):
        app.add_exception_handler(db_error, _database_unavailable)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(Exception, _unexpected)
