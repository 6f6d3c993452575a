"""`create_app(container)`: the FastAPI application; its lifespan runs the engine loop.
`create_monitor_app(container)`: only `/healthz`, `/readyz` and `/metrics` around the engine loop,
for a `sos-router worker --metrics-port`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from app import errors, limits
from app.api import api_router, health
from app.api.webhooks import slack as slack_webhooks
from app.container import Container
from app.deadline import RequestDeadline
from app.metrics import CountServerErrors
from app.web import ack, console, docs, report
from app.web.pages import STATIC, SecurityHeaders


async def _to_sign_in(_: Request, __: Exception) -> Response:
    return RedirectResponse("/console/login", status_code=303)


def _lifespan(
    container: Container, *, run_engine: bool
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        task = None
        await container.start(run_engine=run_engine)
        if run_engine:
            task = asyncio.create_task(container.engine.run_forever())
        try:
            yield
        finally:
            container.engine.stop()
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait_for(task, 10)
            await container.close()

    return lifespan


def create_app(container: Container, *, run_engine: bool = True) -> FastAPI:
    app = FastAPI(
        title="sos-router",
        version="0.1.0",
        summary="A customer in trouble reaches a human within 10 minutes.",
        lifespan=_lifespan(container, run_engine=run_engine),
        # `/docs` is our own page (`app/web/docs.py`): the stock ones run inline script.
        docs_url=None,
        redoc_url=None,
    )
    app.state.container = container
    # `/readyz` checks that the engine ticks only where it runs.
    app.state.runs_engine = run_engine
    # Innermost: its 503 is counted and gets the security headers like any other answer.
    app.add_middleware(RequestDeadline, seconds=container.settings.limits.request_timeout_seconds)
    app.add_middleware(CountServerErrors, counter=container.metrics.server_errors)
    app.add_middleware(SecurityHeaders)
    limits.install(app, container)
    errors.install(app)
    app.include_router(api_router)
    app.add_exception_handler(console.NotSignedIn, _to_sign_in)
    for router in (ack.router, report.router, console.router, docs.router, slack_webhooks.router):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def create_monitor_app(container: Container) -> FastAPI:
    """The engine loop with only the self-monitoring endpoints: what a worker serves."""
    app = FastAPI(
        title="sos-router worker",
        openapi_url=None,
        lifespan=_lifespan(container, run_engine=True),
    )
    app.state.container = container
    app.state.runs_engine = True
    app.include_router(health.router)
    return app
