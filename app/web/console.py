"""The staff console: sign in with a staff token, see open reports by time left, accept and
resolve, read a report's timeline, watch the promise over 30 days (charts and CSV), and see what
could break it before a report arrives (readiness).

Sessions live on the server (`staff_sessions`); the cookie holds only a random secret and is
HttpOnly, SameSite=Strict and Secure (`pages.secure_cookies`). A session ends after
`SOS_AUTH__SESSION_IDLE_SECONDS` without a request, `SOS_AUTH__SESSION_MAX_SECONDS` after sign-in,
at sign-out, or when its token is revoked or expires; a dead session's cookie never works again.
Every form carries a CSRF value: bound to the session once signed in (an HMAC of its secret), a
double-submit cookie on the sign-in form. Refused sign-ins count towards the same per-address
limit as refused API tokens (`app.deps.failures`) and are recorded.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import math
from datetime import datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.container import Container
from app.deps import ContainerDep, DbDep, NowDep, refuse, too_many_failures
from app.web import charts
from app.web.pages import SECURITY_HEADERS, DoubleSubmit, duration, render, secure_cookies
from app.web.texts import CONSOLE_TEXTS, pick
from routing import readiness
from routing.auth import service as auth_service
from routing.auth.service import Principal
from routing.errors import RoutingError, TooManyRequests, ValidationFailed
from routing.inbound import service as inbound
from routing.notify import service as notify
from routing.page.messages import staff_language
from routing.phone import mask_phone
from routing.report import queries
from routing.report import service as report_service
from routing.staff.models import Staff
from routing.types import Role

router = APIRouter(prefix="/console", include_in_schema=False)

COOKIE = "sos_session"
LOGIN_CSRF = DoubleSubmit("sos_login_csrf", "/console/login")
AT_RISK_SECONDS = 180
SLA_DAYS = 30


class SignedIn:
    def __init__(self, principal: Principal, secret: str, container: Container, lang: str) -> None:
        self.principal = principal
        self.lang = lang
        self.t = CONSOLE_TEXTS[lang]
        self.csrf = hmac.new(
            container.secret_key, b"csrf:" + secret.encode(), hashlib.sha256
        ).hexdigest()

    def check(self, given: str) -> bool:
        return hmac.compare_digest(self.csrf, given)


class NotSignedIn(Exception):
    pass


async def signed_in(request: Request, container: ContainerDep, now: NowDep) -> SignedIn:
    secret = request.cookies.get(COOKIE, "")
    limits = container.settings.auth
    async with container.db.begin() as session:
        principal = await auth_service.resume_session(
            session,
            secret=secret,
            now=now,
            idle=timedelta(seconds=limits.session_idle_seconds),
            max_age=timedelta(seconds=limits.session_max_seconds),
        )
        staff_id = principal.staff_id if principal else None
        staff = await session.get(Staff, staff_id) if staff_id else None
    if principal is None:
        raise NotSignedIn
    lang = staff_language(staff.languages) if staff else _browser_language(request)
    return SignedIn(principal, secret, container, lang)


def _browser_language(request: Request) -> str:
    return pick(request.query_params.get("lang"), request.headers.get("accept-language"))


def _page(me: SignedIn, name: str, *, status_code: int = 200, **context: Any) -> HTMLResponse:
    return render(name, status_code=status_code, me=me, t=me.t, lang=me.lang, **context)


def _message(me: SignedIn, key: str, status_code: int) -> HTMLResponse:
    return _page(me, "console_message.html", message=me.t[key], status_code=status_code)


Session = Annotated[SignedIn, Depends(signed_in)]


def _to(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303, headers=SECURITY_HEADERS)


def _login_page(
    request: Request, container: Container, *, status_code: int = 200, **context: Any
) -> HTMLResponse:
    lang = _browser_language(request)
    value = LOGIN_CSRF.value(request)
    page = render(
        "console_login.html",
        status_code=status_code,
        t=CONSOLE_TEXTS[lang],
        lang=lang,
        csrf=LOGIN_CSRF.field(container.secret_key, value),
        **context,
    )
    LOGIN_CSRF.set(page, value, secure=secure_cookies(container.settings, request))
    return page


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, container: ContainerDep) -> HTMLResponse:
    return _login_page(request, container)


@router.post("/login", response_model=None)
async def login(
    request: Request,
    container: ContainerDep,
    db: DbDep,
    now: NowDep,
    token: Annotated[str, Form(max_length=200)] = "",
    csrf: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    if not LOGIN_CSRF.ok(container.secret_key, request, csrf):
        return _login_page(request, container, status_code=403, problem="form_expired")
    wait = too_many_failures(request, now)
    if wait:
        page = _login_page(
            request, container, status_code=429, problem="too_many", minutes=math.ceil(wait / 60)
        )
        page.headers["Retry-After"] = str(wait)
        return page
    async with db.begin() as session:
        found = await auth_service.check(session, secret=token.strip(), now=now)
        if isinstance(found, Principal) and found.role not in (Role.STAFF, Role.ADMIN):
            found = auth_service.Refused(f"{found.role} token", found.token_id)
        if isinstance(found, auth_service.Refused):
            refuse(request, session, found, now=now, where="console sign-in")
        else:
            secret = await auth_service.start_session(session, principal=found, now=now)
    if isinstance(found, auth_service.Refused):
        return _login_page(request, container, status_code=401, problem="refused")
    response = _to("/console")
    response.set_cookie(
        COOKIE,
        secret,
        httponly=True,
        samesite="strict",
        secure=secure_cookies(container.settings, request),
        path="/console",
    )
    response.delete_cookie(LOGIN_CSRF.cookie, path=LOGIN_CSRF.path)
    return response


@router.post("/logout", response_model=None)
async def logout(
    request: Request,
    me: Session,
    db: DbDep,
    now: NowDep,
    csrf: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    if not me.check(csrf):
        return _message(me, "form_expired", 403)
    async with db.begin() as session:
        await auth_service.end_session(session, secret=request.cookies.get(COOKIE, ""), now=now)
    response = _to("/console/login")
    response.delete_cookie(COOKIE, path="/console")
    return response


@router.get("", response_class=HTMLResponse)
async def open_reports(
    me: Session, db: DbDep, now: NowDep, container: ContainerDep
) -> HTMLResponse:
    async with db() as session:
        rows = await queries.open_reports(session, now=now)
    zone = ZoneInfo(container.settings.time_zone)
    items = []
    for row in rows:
        callback = row.report.callback_at
        left = row.seconds_left(now)
        items.append(
            {
                "row": row,
                "left": left,
                "countdown": (me.t["left"] if left >= 0 else me.t["over"]).format(
                    time=duration(left)
                ),
                "age": duration((now - row.report.received_at).total_seconds()),
                "at_risk": row.report.acknowledged_at is None and left < AT_RISK_SECONDS,
                "callback_local": callback.astimezone(zone).strftime("%d-%m %H:%M")
                if callback
                else "",
            }
        )
    return _page(me, "console.html", items=items, now=now)


async def _act(
    me: SignedIn, csrf: str, action: str, report_id: str, container: Container, now: datetime
) -> Response:
    if not me.check(csrf):
        return _message(me, "form_expired", 403)
    if me.principal.staff_id is None:
        return _message(me, "not_staff", 403)
    async with container.db.begin() as session:
        try:
            staff_id = me.principal.staff_id
            if action == "ack":
                staff = await session.get(Staff, staff_id)
                assert staff is not None
                await inbound.accept_report(
                    session, report_id=report_id, staff=staff, now=now, how="console"
                )
            else:
                await report_service.resolve(
                    session, report_id=report_id, staff_id=staff_id, now=now
                )
        except RoutingError as exc:
            return _page(me, "console_message.html", message=exc.message, status_code=409)
    container.engine.trigger()
    return _to("/console")


@router.post("/reports/{report_id}/ack", response_model=None)
async def accept(
    report_id: str,
    me: Session,
    container: ContainerDep,
    now: NowDep,
    csrf: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    return await _act(me, csrf, "ack", report_id, container, now)


@router.post("/reports/{report_id}/resolve", response_model=None)
async def resolve(
    report_id: str,
    me: Session,
    container: ContainerDep,
    now: NowDep,
    csrf: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    return await _act(me, csrf, "resolve", report_id, container, now)


@router.get("/reports/{report_id}", response_class=HTMLResponse)
async def report_timeline(report_id: str, me: Session, db: DbDep, now: NowDep) -> HTMLResponse:
    async with db() as session:
        try:
            report = await report_service.get(session, report_id)
        except RoutingError:
            return _message(me, "no_report", 404)
        view = await report_service.view(session, report)
    return _page(me, "console_report.html", report=view, now=now)


async def _sla_rows(container: Container, now: datetime) -> list[queries.SlaRow]:
    since = (now - timedelta(days=SLA_DAYS - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    async with container.db() as session:
        return await queries.sla_log(session, since=since, until=now + timedelta(seconds=1))


@router.get("/sla", response_class=HTMLResponse)
async def sla_page(me: Session, container: ContainerDep, now: NowDep) -> HTMLResponse:
    rows = await _sla_rows(container, now)
    days = queries.per_day(rows, last=now.date(), days=SLA_DAYS)
    counts = queries.histogram(rows)
    met = sum(d.met for d in days)
    missed = sum(d.missed for d in days)
    return _page(
        me,
        "console_sla.html",
        days=days,
        met=met,
        missed=missed,
        open=sum(1 for r in rows if r.met is None),
        total=len(rows),
        share=f"{met / (met + missed):.1%}" if met + missed else "-",
        share_chart=charts.met_share_per_day(days),
        ack_chart=charts.time_to_ack(
            counts, bucket_seconds=60, promise_seconds=container.settings.sla_seconds
        ),
    )


@router.get("/sla.csv", response_model=None)
async def sla_csv(me: Session, container: ContainerDep, now: NowDep) -> Response:
    del me
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "reference",
            "channel",
            "category",
            "received_at",
            "acknowledged_at",
            "time_to_ack_seconds",
            "met",
        ]
    )
    for row in await _sla_rows(container, now):
        writer.writerow(
            [
                row.reference,
                row.channel,
                row.category,
                row.received_at.isoformat(),
                row.acknowledged_at.isoformat() if row.acknowledged_at else "",
                f"{row.time_to_ack_seconds:.3f}" if row.time_to_ack_seconds is not None else "",
                {True: "met", False: "missed", None: "open"}[row.met],
            ]
        )
    return Response(
        out.getvalue(),
        media_type="text/csv",
        headers={**SECURITY_HEADERS, "Content-Disposition": 'attachment; filename="sla-log.csv"'},
    )


@router.get("/readiness", response_class=HTMLResponse)
async def readiness_page(me: Session, container: ContainerDep, now: NowDep) -> HTMLResponse:
    async with container.db() as session:
        found = await readiness.check(session, now=now)
    zone = ZoneInfo(container.settings.time_zone)

    def local(when: datetime) -> str:
        return when.astimezone(zone).strftime("%Y-%m-%d %H:%M")

    gaps = [
        {"chain": gap.chain.name, "from": local(gap.from_), "to": local(gap.to)}
        for gap in found.coverage_gaps
    ]
    return _page(
        me, "console_readiness.html", found=found, gaps=gaps, zone=container.settings.time_zone
    )


# --- my phone: request a code, type it in ------------------------------------------------------


async def _me(me: SignedIn, container: Container) -> Staff | None:
    if me.principal.staff_id is None:
        return None
    async with container.db() as session:
        return await session.get(Staff, me.principal.staff_id)


def _phone_page(
    me: SignedIn, staff: Staff, *, note: str | None = None, error: str | None = None
) -> HTMLResponse:
    return _page(
        me,
        "console_phone.html",
        status_code=422 if error else 200,
        phone=mask_phone(staff.phone),
        verified_at=staff.phone_verified_at,
        note=note,
        error=error,
    )


def _code_problem(me: SignedIn, exc: RoutingError) -> str:
    if isinstance(exc, TooManyRequests):
        return me.t["code_too_many"]
    if exc.field == "channel":
        return me.t["code_no_sms"]
    if notify.NEW_CODE in exc.message:
        return me.t["code_void"]
    return me.t["code_wrong"]


@router.get("/phone", response_class=HTMLResponse)
async def my_phone(
    me: Session, container: ContainerDep, sent: str = "", verified: str = ""
) -> HTMLResponse:
    """The signed-in staff member's phone: verified or not, and the two forms."""
    staff = await _me(me, container)
    if staff is None:
        return _message(me, "not_staff", 403)
    note = me.t["code_sent"] if sent else me.t["phone_verified_now"] if verified else None
    return _phone_page(me, staff, note=note)


@router.post("/phone/code", response_model=None)
async def send_phone_code(
    me: Session,
    container: ContainerDep,
    now: NowDep,
    csrf: Annotated[str, Form(max_length=200)] = "",
    channel: Annotated[str, Form(max_length=10)] = "sms",
) -> Response:
    """Send a code by SMS or by a call, then back to the page ("the code is on its way")."""
    if not me.check(csrf):
        return _message(me, "form_expired", 403)
    staff = await _me(me, container)
    if staff is None:
        return _message(me, "not_staff", 403)
    async with container.db.begin() as session:
        try:
            await notify.start_verification(
                session, staff=staff, channel="voice" if channel == "voice" else "sms", now=now
            )
        except (ValidationFailed, TooManyRequests) as exc:
            return _phone_page(me, staff, error=_code_problem(me, exc))
    container.engine.trigger()
    return _to("/console/phone?sent=1")


@router.post("/phone/confirm", response_model=None)
async def confirm_phone_code(
    me: Session,
    container: ContainerDep,
    now: NowDep,
    csrf: Annotated[str, Form(max_length=200)] = "",
    code: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    if not me.check(csrf):
        return _message(me, "form_expired", 403)
    staff = await _me(me, container)
    if staff is None:
        return _message(me, "not_staff", 403)
    code = code.replace(" ", "")
    if not (len(code) == notify.CODE_DIGITS and code.isascii() and code.isdigit()):
        return _phone_page(me, staff, error=me.t["code_format"])
    failed: ValidationFailed | None = None
    async with container.db.begin() as session:
        try:
            await notify.confirm_verification(session, staff_id=staff.id, code=code, now=now)
        except ValidationFailed as exc:
            failed = exc  # commit the counted try before answering
    if failed is not None:
        return _phone_page(me, staff, error=_code_problem(me, failed))
    return _to("/console/phone?verified=1")
