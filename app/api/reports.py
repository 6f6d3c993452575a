"""Report intake, reading, acknowledgement and resolution."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Response
from pydantic import StringConstraints

from app.deps import AppClient, ContainerDep, DbDep, NowDep, Reader, Staff
from app.errors import error_body
from routing.errors import Forbidden, NotFound
from routing.report import service as report_service
from routing.report.schemas import ReportCreate, ReportRead
from routing.types import Role

router = APIRouter(prefix="/v1/reports", tags=["reports"])

IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", description="Retry-safe key, scoped to your token"),
    StringConstraints(min_length=1, max_length=255, strip_whitespace=True),
]

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {
        "description": "no or invalid token",
        "content": {
            "application/json": {
                "example": error_body("unauthorized", "a bearer token is required")
            }
        },
    },
    403: {"description": "the token's role may not do this"},
    404: {"description": "no such report (or not yours)"},
    422: {"description": "invalid field, named in `error.field`"},
}


@router.post("", status_code=201, response_model=ReportRead, responses=ERRORS)
async def create_report(
    body: ReportCreate,
    client: AppClient,
    container: ContainerDep,
    db: DbDep,
    now: NowDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> ReportRead:
    """Report an emergency. A 201 means it is stored and staff paging has started."""
    async with db.begin() as session:
        report, created = await report_service.submit(
            session,
            data=body,
            now=now,
            sla_seconds=container.settings.sla_seconds,
            token_id=client.token_id,
            idempotency_key=idempotency_key,
        )
        view = await report_service.view(session, report)
    if created:
        container.engine.trigger()
    else:
        response.headers["Idempotent-Replayed"] = "true"
    return view


@router.get("/{report_id}", response_model=ReportRead, responses=ERRORS)
async def read_report(report_id: str, reader: Reader, db: DbDep) -> ReportRead:
    async with db() as session:
        report = await report_service.get(session, report_id)
        if reader.role == Role.APP and report.created_by_token_id != reader.token_id:
            raise NotFound("no such report", field="report_id")
        return await report_service.view(session, report)


def _staff_id(staff: Staff) -> str:
    if staff.staff_id is None:
        raise Forbidden("this token does not belong to a staff member")
    return staff.staff_id


@router.post(
    "/{report_id}/ack",
    response_model=ReportRead,
    responses={**ERRORS, 409: {"description": "already acknowledged by someone else (named)"}},
)
async def acknowledge_report(
    report_id: str, staff: Staff, container: ContainerDep, db: DbDep, now: NowDep
) -> ReportRead:
    """Accept the report: the first acknowledgement wins and stops all paging for it."""
    async with db.begin() as session:
        report = await report_service.acknowledge(
            session, report_id=report_id, staff_id=_staff_id(staff), now=now
        )
        view = await report_service.view(session, report)
    container.engine.trigger()
    return view


@router.post("/{report_id}/resolve", response_model=ReportRead, responses=ERRORS)
async def resolve_report(report_id: str, staff: Staff, db: DbDep, now: NowDep) -> ReportRead:
    async with db.begin() as session:
        report = await report_service.resolve(
            session, report_id=report_id, staff_id=_staff_id(staff), now=now
        )
        return await report_service.view(session, report)
