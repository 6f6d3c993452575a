"""The simulated phones, for the zero-setup demo: see the pages, and accept one as its staff
member would by pressing 1; see the texts (receipts, verification codes) the phones received.
Only present while the simulated provider is in use."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel
from sqlalchemy import select

from app.api.responses import API, errors
from app.deps import ContainerDep, DbDep, NowDep, StaffOrAdmin
from providers.base import DeliveryState, DeliveryUpdate
from routing.errors import NotFound
from routing.page import service as page_service
from routing.page.models import Page
from routing.phone import mask_phone
from routing.report import service as report_service
from routing.report.models import Report
from routing.report.schemas import ReportRead
from routing.staff.models import Staff

router = APIRouter(prefix="/v1/simulator", tags=["simulator"], responses=API)

PageIdPath = Annotated[int, Path(ge=1, le=2**63 - 1)]


class SimulatedPage(BaseModel):
    id: int
    report_id: str
    reference: str
    staff_id: str
    staff_name: str
    channel: str
    state: str
    step: int
    created_at: datetime


class SimulatedText(BaseModel):
    message_id: int
    channel: str
    to: str  # masked: enough to recognise the phone
    body: str


def _require_simulator(container: ContainerDep) -> None:
    if container.simulator is None:
        raise NotFound("the simulated phones are not in use")


@router.get("/pages", response_model=list[SimulatedPage], responses=errors(404, 422))
async def list_simulated_pages(
    _: StaffOrAdmin,
    container: ContainerDep,
    db: DbDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[SimulatedPage]:
    """The most recent pages the simulated phones received."""
    _require_simulator(container)
    async with db() as session:
        rows = (
            await session.execute(
                select(Page, Staff.name, Report.reference)
                .join(Staff, Staff.id == Page.staff_id)
                .join(Report, Report.id == Page.report_id)
                .order_by(Page.id.desc())
                .limit(limit)
            )
        ).all()
    return [
        SimulatedPage(
            id=p.id,
            report_id=p.report_id,
            reference=ref,
            staff_id=p.staff_id,
            staff_name=name,
            channel=p.channel,
            state=p.state,
            step=p.step_no,
            created_at=p.created_at,
        )
        for p, name, ref in rows
    ]


@router.get("/texts", response_model=list[SimulatedText], responses=errors(404, 422))
async def list_simulated_texts(
    _: StaffOrAdmin,
    container: ContainerDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[SimulatedText]:
    """The most recent texts the simulated phones received, newest first (a verification code
    shows here, as it would on the phone)."""
    _require_simulator(container)
    assert container.simulator is not None
    return [
        SimulatedText(message_id=t.message_id, channel=t.channel, to=mask_phone(t.to), body=t.body)
        for t in reversed(container.simulator.texts[-limit:])
    ]


@router.post("/pages/{page_id}/accept", response_model=ReportRead, responses=errors(404, 409, 422))
async def accept_simulated_page(
    page_id: PageIdPath, _: StaffOrAdmin, container: ContainerDep, db: DbDep, now: NowDep
) -> ReportRead:
    """The paged staff member presses 1: they accept the report, as on a real call."""
    _require_simulator(container)
    async with db.begin() as session:
        page = await session.get(Page, page_id)
        if page is None:
            raise NotFound("no such page", field="page_id")
        report = await report_service.acknowledge(
            session,
            report_id=page.report_id,
            staff_id=page.staff_id,
            now=now,
            how=f"simulated {page.channel}",
        )
        view = await report_service.view(session, report)
    container.engine.trigger()
    return view


@router.post("/pages/{page_id}/miss", response_model=ReportRead, responses=errors(404, 422))
async def miss_simulated_page(
    page_id: PageIdPath, _: StaffOrAdmin, container: ContainerDep, db: DbDep, now: NowDep
) -> ReportRead:
    """The paged staff member does not answer: the page fails and the chain moves on at once."""
    _require_simulator(container)
    async with db.begin() as session:
        page = await session.get(Page, page_id)
        if page is None:
            raise NotFound("no such page", field="page_id")
        if page.external_id:
            await page_service.apply_delivery_update(
                session,
                page_id=page_id,
                now=now,
                update_=DeliveryUpdate(
                    page.external_id, DeliveryState.FAILED, "no answer (simulated)"
                ),
            )
        view = await report_service.view(session, await report_service.get(session, page.report_id))
    container.engine.trigger()
    return view
