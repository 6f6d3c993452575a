"""Staff directory (admin), and phone verification (the staff member themself, or an admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path

from app.api.responses import API, BODY, errors
from app.deps import Admin, ContainerDep, DbDep, NowDep, StaffOrAdmin
from routing.auth.service import Principal
from routing.errors import Forbidden, ValidationFailed
from routing.notify import service as notify
from routing.notify.schemas import VerificationConfirm, VerificationStart, VerificationStarted
from routing.staff import service as staff_service
from routing.staff.schemas import StaffCreate, StaffRead
from routing.types import Role

router = APIRouter(prefix="/v1/staff", tags=["staff"], responses=API)

StaffIdPath = Annotated[str, Path(max_length=36)]


@router.post("", status_code=201, response_model=StaffRead, responses=BODY)
async def create_staff(body: StaffCreate, admin: Admin, db: DbDep, now: NowDep) -> StaffRead:
    async with db.begin() as session:
        staff = await staff_service.create(session, data=body, now=now, actor=admin.token_id)
        return StaffRead.model_validate(staff)


@router.get("", response_model=list[StaffRead])
async def list_staff(_: Admin, db: DbDep) -> list[StaffRead]:
    async with db() as session:
        return [StaffRead.model_validate(s) for s in await staff_service.list_all(session)]


def _may_verify(principal: Principal, staff_id: str) -> None:
    """An admin, or the staff member whose phone it is."""
    if principal.role == Role.ADMIN:
        return
    if principal.role == Role.STAFF and principal.staff_id == staff_id:
        return
    raise Forbidden("only an admin or the staff member themself can verify this phone")


@router.post(
    "/{staff_id}/verification",
    status_code=202,
    response_model=VerificationStarted,
    responses={**errors(404), **BODY},
)
async def start_phone_verification(
    staff_id: StaffIdPath,
    principal: StaffOrAdmin,
    container: ContainerDep,
    db: DbDep,
    now: NowDep,
    body: Annotated[VerificationStart | None, Body()] = None,
) -> VerificationStarted:
    """Send a 6-digit code to the staff member's phone, by SMS (default) or a call that says it.
    A new code replaces the previous one. 202: the code is queued and sent right after."""
    _may_verify(principal, staff_id)
    channel = (body or VerificationStart()).channel
    async with db.begin() as session:
        staff = await staff_service.get(session, staff_id)
        verification = await notify.start_verification(
            session, staff=staff, channel=channel, now=now
        )
        started = VerificationStarted(expires_at=verification.expires_at)
    container.engine.trigger()
    return started


@router.post(
    "/{staff_id}/verification/confirm",
    status_code=200,
    response_model=StaffRead,
    responses={**errors(404), **BODY},
)
async def confirm_phone_verification(
    staff_id: StaffIdPath,
    body: VerificationConfirm,
    principal: StaffOrAdmin,
    db: DbDep,
    now: NowDep,
) -> StaffRead:
    """Confirm the code: the phone counts as verified (`phone_verified_at`). A wrong code is a 422
    naming `code`; after 5 wrong codes, or 10 minutes, a new code is needed."""
    _may_verify(principal, staff_id)
    failed: ValidationFailed | None = None
    async with db.begin() as session:
        try:
            staff = await notify.confirm_verification(
                session, staff_id=staff_id, code=body.code, now=now
            )
        except ValidationFailed as exc:
            failed = exc  # commit the counted try (or the voided code) before answering
        else:
            read = StaffRead.model_validate(staff)
    if failed is not None:
        raise failed
    return read
