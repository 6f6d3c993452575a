"""Request dependencies as `Annotated` aliases, so routes read as plain typed parameters."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.exceptions import HTTPException

from app.container import Container
from app.throttle import SlidingWindow
from routing.auth import service as auth_service
from routing.auth.service import Principal
from routing.types import Role


async def get_container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


ContainerDep = Annotated[Container, Depends(get_container)]


async def get_db(container: ContainerDep) -> async_sessionmaker[AsyncSession]:
    return container.db


async def get_now(container: ContainerDep) -> datetime:
    return container.clock.now()


DbDep = Annotated[async_sessionmaker[AsyncSession], Depends(get_db)]
NowDep = Annotated[datetime, Depends(get_now)]

UNAUTHORIZED = {"WWW-Authenticate": "Bearer"}


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def failures(request: Request) -> SlidingWindow:
    """Refused secrets per client address, for API tokens and console sign-in alike: one window
    per application (so per process, and fresh for every test app)."""
    window = getattr(request.app.state, "auth_failures", None)
    if not isinstance(window, SlidingWindow):
        settings = request.app.state.container.settings.auth
        window = SlidingWindow(
            settings.failure_limit, timedelta(seconds=settings.failure_window_seconds)
        )
        request.app.state.auth_failures = window
    return window


def too_many_failures(request: Request, now: datetime) -> int:
    """Seconds this client must wait before presenting a secret again; 0: it may now."""
    return failures(request).retry_after(client_address(request), now)


def refuse(
    request: Request,
    session: AsyncSession,
    refused: auth_service.Refused,
    *,
    now: datetime,
    where: str,
) -> None:
    """Count a refused secret against the client and record it (without the secret)."""
    failures(request).record(client_address(request), now)
    auth_service.record_refused(
        session, at=now, refused=refused, client=client_address(request), where=where
    )


async def get_principal(request: Request, container: ContainerDep) -> Principal:
    """The caller of a bearer-token route. A missing token is a plain 401; a wrong, expired or
    revoked one is also counted against the client address and recorded, and a client over the
    limit gets 429 with `Retry-After` before its token is even looked at."""
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise HTTPException(401, "a bearer token is required", headers=UNAUTHORIZED)
    now = container.clock.now()
    wait = too_many_failures(request, now)
    if wait:
        raise HTTPException(
            429, "too many refused tokens from this address", headers={"Retry-After": str(wait)}
        )
    async with container.db() as session:
        found = await auth_service.check(session, secret=secret.strip(), now=now)
        if isinstance(found, Principal):
            return found
        refuse(request, session, found, now=now, where="api")
        await session.commit()
    raise HTTPException(401, "the token is not valid", headers=UNAUTHORIZED)


def require(*roles: Role) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """Only tokens of `roles` get through; any other valid token gets 403, recorded."""
    allowed = " or ".join(roles)

    async def check(
        request: Request,
        principal: Annotated[Principal, Depends(get_principal)],
        container: ContainerDep,
    ) -> Principal:
        if principal.role not in roles:
            async with container.db.begin() as session:
                auth_service.record_denied(
                    session,
                    at=container.clock.now(),
                    principal=principal,
                    action=f"{request.method} {request.url.path}",
                    allowed=allowed,
                )
            raise HTTPException(403, f"this needs a token of role {allowed}")
        return principal

    return check


AppClient = Annotated[Principal, Depends(require(Role.APP))]
Staff = Annotated[Principal, Depends(require(Role.STAFF))]
StaffOrAdmin = Annotated[Principal, Depends(require(Role.STAFF, Role.ADMIN))]
Reader = Annotated[Principal, Depends(require(Role.APP, Role.STAFF, Role.ADMIN))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]
