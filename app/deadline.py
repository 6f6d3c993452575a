"""A deadline on every request: one not answered within `SOS_LIMITS__REQUEST_TIMEOUT_SECONDS` is
cut off and answered 503 with `Retry-After`, as when the database cannot be reached.

Handlers do nothing slow but wait on the database (providers are called by the engine, never from
a request), so a request this late is waiting on a slow or silent database. Each statement has
its own bound (`SOS_DATABASE__STATEMENT_TIMEOUT_SECONDS`), but a request makes several round
trips: over a slow network they add up. Cutting the request off is safe: its transaction is
rolled back (a connection cut mid-statement is closed, and PostgreSQL rolls back what it held),
or it had committed and the client, retrying with its `Idempotency-Key`, gets the stored answer.

The deadline runs until the response starts; a response already on its way is never cut.
"""

from __future__ import annotations

import asyncio
import logging

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import error_body

log = logging.getLogger(__name__)

RETRY_AFTER = "2"


class RequestDeadline:
    """ASGI middleware: at most `seconds` from the request to the start of its response."""

    def __init__(self, app: ASGIApp, *, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False
        deadline = asyncio.timeout(self.seconds)

        async def answering(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                deadline.reschedule(None)  # the answer is on its way: let it finish
            await send(message)

        try:
            async with deadline:
                await self.app(scope, receive, answering)
        except TimeoutError:
            if started or not deadline.expired():
                raise
            route = getattr(scope.get("route"), "path", "?")  # the template: no ids or secrets
            log.warning("%s %s not answered within %g s: 503", scope["method"], route, self.seconds)
            response = JSONResponse(
                error_body("unavailable", "temporarily unavailable; retry shortly"),
                status_code=503,
                headers={"Retry-After": RETRY_AFTER},
            )
            await response(scope, receive, send)
