"""Self-monitoring: liveness, readiness and Prometheus metrics. No token: probes and scrapers have
none, and nothing here names a person or a report. Keep `/metrics` off the public internet at the
proxy all the same: it shows how many reports come in.

- `/healthz`: the process answers. A failure means restart it.
- `/readyz`: the process can do its job now: the database answers within `DB_TIMEOUT`, the engine
  loop (where this process runs one) has ticked within `ENGINE_STALE_AFTER`, and voice and SMS
  each have a sender. A failure means send no traffic for now (503 with `Retry-After`), and the
  body names the failed checks. `checks.pumping` is information only, never a failure: open
  pumping breakers stop customer texts and calls in their scope, while paging staff goes on.
- `/metrics`: see `app/metrics.py`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel
from sqlalchemy import text

from app.api.responses import RETRY_AFTER
from app.container import Container
from app.deps import ContainerDep
from providers.base import Channel
from providers.registry import UnsupportedChannel
from routing.pumping import service as pumping

router = APIRouter(tags=["health"])

# A hung database must fail the probe quickly, not hang it.
DB_TIMEOUT = 2.0
# The loop sleeps at most 1 s between ticks, but one tick may wait out a provider's 8 s send
# deadline: only a loop silent for longer than that is stuck.
ENGINE_STALE_AFTER = 15.0
# The promise needs calls and texts (receipts go by SMS); chat is extra.
REQUIRED_CHANNELS = (Channel.VOICE, Channel.SMS)


@dataclass
class Check:
    ok: bool
    detail: str
    data: dict[str, Any] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        return {"ok": self.ok, "detail": self.detail, **self.data}


class ReadyzRead(BaseModel):
    status: Literal["ok", "unavailable"]
    failed: list[str]
    checks: dict[str, dict[str, Any]]


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=None,
    responses={
        200: {"model": ReadyzRead, "description": "ready"},
        503: {
            "model": ReadyzRead,
            "description": "not ready: `failed` names the checks",
            "headers": RETRY_AFTER,
        },
    },
)
async def readyz(request: Request, container: ContainerDep) -> JSONResponse:
    database = await _database(container)
    checks = {
        "database": database,
        "engine": _engine(container, runs_engine=request.app.state.runs_engine),
        "providers": _providers(container),
        "pumping": await _pumping(container, database_ok=database.ok),
    }
    failed = [name for name, check in checks.items() if not check.ok]
    body = {
        "status": "unavailable" if failed else "ok",
        "failed": failed,
        "checks": {name: check.body() for name, check in checks.items()},
    }
    if failed:
        return JSONResponse(body, status_code=503, headers={"Retry-After": "5"})
    return JSONResponse(body)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
)
async def metrics(container: ContainerDep) -> Response:
    return Response(await container.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


async def _database(container: Container) -> Check:
    async def ping() -> None:
        async with container.db() as session:
            await session.execute(text("SELECT 1"))

    try:
        await asyncio.wait_for(ping(), DB_TIMEOUT)
    except TimeoutError:
        return Check(False, f"no answer within {DB_TIMEOUT:g} s")
    except Exception as exc:
        # The kind of error only: its text may carry the connection string.
        return Check(False, f"unreachable ({type(exc).__name__})")
    return Check(True, "answers")


async def _pumping(container: Container, *, database_ok: bool) -> Check:
    """The pumping breakers open now. Always ok: an open breaker stops customer texts and calls
    in its scope, never paging, so this process can still do its job."""
    unread: dict[str, Any] = {"breakers_open": None, "by_scope": {}}
    if not database_ok:  # a database that failed its check is not waited for twice
        return Check(True, "not read: the database does not answer", unread)

    async def read() -> dict[str, int]:
        async with container.db() as session:
            return await pumping.open_by_scope(session, container.clock.now())

    try:
        by_scope = await asyncio.wait_for(read(), DB_TIMEOUT)
    except Exception as exc:
        return Check(True, f"not read ({type(exc).__name__})", unread)
    total = sum(by_scope.values())
    data = {"breakers_open": total, "by_scope": by_scope}
    if not total:
        return Check(True, "no breaker open", data)
    scopes = ", ".join(scope for scope, count in by_scope.items() if count)
    return Check(
        True,
        f"{total} breaker{'s' if total > 1 else ''} open ({scopes}): customer texts and calls "
        "there are stopped; staff paging goes on",
        data,
    )


def _engine(container: Container, *, runs_engine: bool) -> Check:
    if not runs_engine:
        return Check(True, "this process runs no engine")
    last = container.engine.last_tick_at
    if last is None:
        return Check(False, "the engine has not ticked yet")
    silent = (container.clock.now() - last).total_seconds()
    data = {"last_tick_at": last.isoformat()}
    if silent > ENGINE_STALE_AFTER:
        return Check(False, f"no tick for {silent:.0f} s", data)
    return Check(True, "ticking", data)


def _providers(container: Container) -> Check:
    """Which sender serves each channel (the simulated phones count: the demo runs on them)."""
    senders: dict[str, str] = {}
    for channel in Channel:
        try:
            senders[str(channel)] = container.registry.sender_for(channel).name
        except UnsupportedChannel:
            continue
    missing = [str(c) for c in REQUIRED_CHANNELS if str(c) not in senders]
    data = {"channels": senders}
    if missing:
        return Check(False, f"no sender for {', '.join(missing)}", data)
    return Check(True, "configured", data)
