"""Escalation chains (admin)."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.responses import API, BODY
from app.deps import Admin, DbDep, NowDep
from routing.chain import service as chain_service
from routing.chain.schemas import ChainCreate, ChainRead

router = APIRouter(prefix="/v1/chains", tags=["chains"], responses=API)


@router.post("", status_code=201, response_model=ChainRead, responses=BODY)
async def create_chain(body: ChainCreate, admin: Admin, db: DbDep, now: NowDep) -> ChainRead:
    async with db.begin() as session:
        chain = await chain_service.create(session, data=body, now=now, actor=admin.token_id)
        return ChainRead.model_validate(chain)


@router.get("", response_model=list[ChainRead])
async def list_chains(_: Admin, db: DbDep) -> list[ChainRead]:
    async with db() as session:
        return [ChainRead.model_validate(c) for c in await chain_service.list_all(session)]
