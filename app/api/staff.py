"""Staff directory (admin)."""

from __future__ import annotations

from fastapi import APIRouter

from app.deps import Admin, DbDep, NowDep
from routing.staff import service as staff_service
from routing.staff.schemas import StaffCreate, StaffRead

router = APIRouter(prefix="/v1/staff", tags=["staff"])


@router.post("", status_code=201, response_model=StaffRead)
async def create_staff(body: StaffCreate, _: Admin, db: DbDep, now: NowDep) -> StaffRead:
    async with db.begin() as session:
        return StaffRead.model_validate(await staff_service.create(session, data=body, now=now))


@router.get("", response_model=list[StaffRead])
async def list_staff(_: Admin, db: DbDep) -> list[StaffRead]:
    async with db() as session:
        return [StaffRead.model_validate(s) for s in await staff_service.list_all(session)]
