"""`/ack/{token}`: accept a page from a link in an SMS or chat message.

GET shows the emergency and an Accept button and changes nothing (link scanners open links);
POST from the button accepts, once. Pages speak the paged staff member's language.

The link of a bundled SMS (several open reports in one message) takes the bundle's report closest
to its deadline that nobody holds yet; GET shows that one.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from sqlalchemy.ext.asyncio import AsyncSession

from app.deps import ContainerDep, DbDep, NowDep
from app.web.pages import duration, render
from app.web.texts import ACK_TEXTS
from routing.errors import NotFound
from routing.inbound import service as inbound
from routing.page import bundle, links
from routing.page.messages import CATEGORY_NAMES, staff_language
from routing.page.models import Page
from routing.report.models import Report
from routing.staff.models import Staff

router = APIRouter(tags=["ack links"], include_in_schema=False)

LIFETIME_MINUTES = int(links.LINK_LIFETIME.total_seconds() // 60)
UNKNOWN_LANGUAGE = "nl"


def _page(state: str, lang: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    return render(
        "ack.html",
        state=state,
        lang=lang,
        t=ACK_TEXTS[lang],
        lifetime=LIFETIME_MINUTES,
        status_code=status_code,
        **context,
    )


async def _target(session: AsyncSession, page_id: int) -> list[int]:
    """The pages this link may take, most urgent first; just its own page when all are taken
    (which then says who has it)."""
    return await bundle.pages_to_accept(session, page_id=page_id) or [page_id]


async def _context(session: AsyncSession, page_id: int) -> tuple[Page, Report, str]:
    page = await session.get(Page, page_id)
    assert page is not None
    report = await session.get(Report, page.report_id)
    staff = await session.get(Staff, page.staff_id)
    assert report is not None
    assert staff is not None
    return page, report, staff_language(staff.languages)


async def _holder(session: AsyncSession, report: Report) -> str:
    holder = await session.get(Staff, report.acknowledged_by_id or "")
    return holder.name if holder else "?"


@router.get("/ack/{token}", response_class=HTMLResponse)
async def show_ack_link(token: str, db: DbDep, now: NowDep) -> HTMLResponse:
    async with db() as session:
        try:
            link = await links.look(session, token=token)
        except NotFound:
            return _page("unknown", UNKNOWN_LANGUAGE, 404)
        page, report, lang = await _context(session, (await _target(session, link.page_id))[0])
        if link.used_at is not None:
            return _page("used", lang, reference=report.reference)
        if link.expires_at <= now:
            return _page("expired", lang, 410, reference=report.reference)
        if report.acknowledged_by_id not in (None, page.staff_id):
            holder = await _holder(session, report)
            return _page("taken", lang, holder=holder, reference=report.reference)
    t = ACK_TEXTS[lang]
    left = (report.deadline_at - now).total_seconds()
    return _page(
        "open",
        lang,
        token=token,
        reference=report.reference,
        category=CATEGORY_NAMES[lang].get(report.category, report.category),
        age=duration((now - report.received_at).total_seconds()),
        time_left=(t["left"] if left >= 0 else t["missed"]).format(time=duration(left)),
        overdue=left < 0,
    )


@router.post("/ack/{token}", response_class=HTMLResponse)
async def use_ack_link(token: str, container: ContainerDep, db: DbDep, now: NowDep) -> HTMLResponse:
    async with db.begin() as session:
        try:
            link = await links.look(session, token=token)
            page, report, lang = await _context(session, link.page_id)
            await links.use(session, token=token, now=now)
        except NotFound:
            return _page("unknown", UNKNOWN_LANGUAGE, 404)
        except links.LinkUsed:
            return _page("used", lang, 409, reference=report.reference)
        except links.LinkExpired:
            return _page("expired", lang, 410, reference=report.reference)
        result = await inbound.accept_first(
            session, page_ids=await _target(session, page.id), now=now, via="ack link"
        )
    container.engine.trigger()
    if result.report.acknowledged_by_id != page.staff_id:
        return _page(
            "taken", lang, 409, holder=result.holder_name, reference=result.report.reference
        )
    return _page(
        "accepted",
        lang,
        reference=result.report.reference,
        callback_phone=result.report.callback_phone,
    )
