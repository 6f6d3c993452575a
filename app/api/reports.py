"""Report intake, reading, acknowledgement and resolution."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Response
from pydantic import StringConstraints

from app.api.responses import API, BODY, errors
from app.container import public_url
from app.deps import AppClient, ContainerDep, DbDep, NowDep, Reader, Staff
from app.limits import Limits
from routing.errors import Forbidden, NotFound
from routing.report import service as report_service
from routing.report import status
from routing.report.schemas import CallbackRequest, ReportCreate, ReportRead
from routing.report.service import Intake
from routing.types import Role

router = APIRouter(prefix="/v1/reports", tags=["reports"], responses=API)

IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", description="Retry-safe key, scoped to your token"),
    StringConstraints(min_length=1, max_length=255, strip_whitespace=True),
]


@router.post(
    "",
    status_code=201,
    response_model=ReportRead,
    responses={
        **BODY,
        **errors(409),
        200: {
            "description": "not a new report: an Idempotency-Key replay "
            "(`Idempotent-Replayed: true`), or the customer's open case this contact joined "
            "(`Case-Joined: true`)",
            "model": ReportRead,
        },
    },
)
async def create_report(
    body: ReportCreate,
    client: AppClient,
    container: ContainerDep,
    db: DbDep,
    now: NowDep,
    response: Response,
    limits: Limits,
    idempotency_key: IdempotencyKey = None,
) -> ReportRead:
    """Report an emergency. A 201 means it is stored and staff paging has started; the response
    carries a status page URL for the customer (a fresh one in every response; earlier ones keep
    working). A customer with an open case (same customer_ref
    or phone) joins it: 200, the case, its promise clock unchanged."""
    limits.phone(body.callback_phone)
    settings = container.settings
    async with db.begin() as session:
        report, outcome = await report_service.submit(
            session,
            data=body,
            now=now,
            sla_seconds=settings.sla_seconds,
            prebreach_seconds=settings.prebreach_seconds,
            token_id=client.token_id,
            idempotency_key=idempotency_key,
        )
        token = await status.new_status_token(session, report, now=now)
        view = await report_service.view(session, report)
    view.status_url = f"{public_url(settings)}/status/{token}"
    if outcome == Intake.REPLAYED:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    else:
        container.engine.trigger()
    if outcome == Intake.JOINED:
        response.status_code = 200
        response.headers["Case-Joined"] = "true"
    return view


@router.get("/{report_id}", response_model=ReportRead, responses=errors(404, 422))
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
    responses=errors(404, 409, 422),
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


@router.post(
    "/{report_id}/callback",
    response_model=ReportRead,
    responses={**errors(404, 409), **BODY},
)
async def request_callback(
    report_id: str,
    body: CallbackRequest,
    reader: Reader,
    container: ContainerDep,
    db: DbDep,
    now: NowDep,
) -> ReportRead:
    """The customer would rather be called at `at`: paging stops now and starts again at `at`,
    and the promise counts from `at` (a promise already broken stays broken)."""
    settings = container.settings
    async with db.begin() as session:
        report = await report_service.get(session, report_id)
        if reader.role == Role.APP and report.created_by_token_id != reader.token_id:
            raise NotFound("no such report", field="report_id")
        report = await report_service.request_callback(
            session,
            report_id=report_id,
            at=body.at,
            now=now,
            sla_seconds=settings.sla_seconds,
            prebreach_seconds=settings.prebreach_seconds,
            time_zone=settings.time_zone,
        )
        view = await report_service.view(session, report)
    container.engine.trigger()
    return view


@router.post("/{report_id}/resolve", response_model=ReportRead, responses=errors(404, 409, 422))
async def resolve_report(report_id: str, staff: Staff, db: DbDep, now: NowDep) -> ReportRead:
    async with db.begin() as session:
        report = await report_service.resolve(
            session, report_id=report_id, staff_id=_staff_id(staff), now=now
        )
        return await report_service.view(session, report)
