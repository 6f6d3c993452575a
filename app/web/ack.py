"""`/ack/{token}`: accept a page from a link in an SMS or chat message.

GET shows the emergency and an Accept button and changes nothing (link scanners open links);
POST from the button accepts, once.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from app.deps import ContainerDep, DbDep, NowDep
from app.web.pages import duration, render
from routing.errors import NotFound
from routing.inbound import service as inbound
from routing.page import links
from routing.page.messages import CATEGORY_NAMES
from routing.page.models import Page
from routing.report.models import Report
from routing.staff.models import Staff

router = APIRouter(tags=["ack links"], include_in_schema=False)

LIFETIME_MINUTES = int(links.LINK_LIFETIME.total_seconds() // 60)


def _missing() -> HTMLResponse:
    return render("ack.html", state="unknown", status_code=404)


@router.get("/ack/{token}", response_class=HTMLResponse)
async def show_ack_link(token: str, db: DbDep, now: NowDep) -> HTMLResponse:
    async with db() as session:
        try:
            link = await links.look(session, token=token)
        except NotFound:
            return _missing()
        page = await session.get(Page, link.page_id)
        assert page is not None
        report = await session.get(Report, page.report_id)
        assert report is not None
        common: dict[str, Any] = {"reference": report.reference, "lifetime": LIFETIME_MINUTES}
        if link.used_at is not None:
            return render("ack.html", state="used", **common)
        if link.expires_at <= now:
            return render("ack.html", state="expired", status_code=410, **common)
        if report.acknowledged_by_id not in (None, page.staff_id):
            holder = await session.get(Staff, report.acknowledged_by_id or "")
            return render(
                "ack.html", state="taken", holder=holder.name if holder else "?", **common
            )
    left = (report.deadline_at - now).total_seconds()
    return render(
        "ack.html",
        state="open",
        token=token,
        lang=report.language,
        category=CATEGORY_NAMES["en"].get(report.category, report.category),
        age=duration((now - report.received_at).total_seconds()),
        time_left=f"{duration(left)} left" if left >= 0 else f"missed {duration(left)} ago",
        overdue=left < 0,
        **common,
    )


@router.post("/ack/{token}", response_class=HTMLResponse)
async def use_ack_link(token: str, container: ContainerDep, db: DbDep, now: NowDep) -> HTMLResponse:
    async with db.begin() as session:
        try:
            page_id = await links.use(session, token=token, now=now)
        except NotFound:
            return _missing()
        except links.LinkUsed:
            return render("ack.html", state="used", status_code=409)
        except links.LinkExpired:
            return render("ack.html", state="expired", lifetime=LIFETIME_MINUTES, status_code=410)
        result = await inbound.accept_page(session, page_id=page_id, now=now, via="ack link")
    container.engine.trigger()
    page_staff = result.report.acknowledged_by_id
    async with db() as session:
        page = await session.get(Page, page_id)
        mine = page is not None and page_staff == page.staff_id
    if not mine:
        return render(
            "ack.html",
            state="taken",
            holder=result.holder_name,
            reference=result.report.reference,
            status_code=409,
        )
    return render(
        "ack.html",
        state="accepted",
        reference=result.report.reference,
        callback_phone=result.report.callback_phone,
    )
