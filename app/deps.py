"""Request dependencies as `Annotated` aliases, so routes read as plain typed parameters."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.exceptions import HTTPException

from app.container import Container
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


async def get_principal(request: Request, container: ContainerDep) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    if not hmac.compare_digest(scheme.lower().encode(), b"bearer") or not secret.strip():
        raise HTTPException(401, "a bearer token is required", headers=UNAUTHORIZED)
    async with container.db() as session:
        principal = await auth_service.authenticate(
            session, secret=secret.strip(), now=container.clock.now()
        )
    if principal is None:
        raise HTTPException(401, "the token is not valid", headers=UNAUTHORIZED)
    return principal


def require(*roles: Role) -> Callable[..., Coroutine[Any, Any, Principal]]:
    async def check(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        if principal.role not in roles:
            raise HTTPException(403, f"this needs a token of role {' or '.join(roles)}")
        return principal

    return check


AppClient = Annotated[Principal, Depends(require(Role.APP))]
Staff = Annotated[Principal, Depends(require(Role.STAFF))]
StaffOrAdmin = Annotated[Principal, Depends(require(Role.STAFF, Role.ADMIN))]
Reader = Annotated[Principal, Depends(require(Role.APP, Role.STAFF, Role.ADMIN))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]
