"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from app.deps import ContainerDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", response_model=None)
async def readyz(container: ContainerDep) -> dict[str, object] | JSONResponse:
    try:
        async with container.db() as session:
            await session.execute(text("SELECT 1"))
    except Exception:
        return JSONResponse(
            {"status": "unavailable", "database": "unreachable"}, 503, headers={"Retry-After": "2"}
        )
    return {
        "status": "ok",
        "database": "ok",
        "channels": sorted(str(c) for c in container.registry.channels),
    }
