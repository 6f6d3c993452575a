"""The customer's web pages: `/report` (a calm form) and `/status/{token}` (the case's own page).

`POST /report` goes through the same intake as the API (`routing.report.service.submit`, with
`channel="web"`), then redirects to an unguessable status page. Guards, in this order:

- **CSRF** (`pages.DoubleSubmit`): a random value in an HttpOnly, SameSite=Strict cookie (Secure
  on https) and the same value with its HMAC-SHA256 under `container.secret_key` in a hidden field;
  both are compared in constant time. Failure → 403 and nothing is kept (a forged form's values
  are never shown back, so nobody can be lured into sending an attacker's callback number).
- **Rate limit**: at most `RATE_LIMIT` reports per `RATE_WINDOW` per client address, counted in
  this process (a sliding window on the service clock). Excess → 429 with `Retry-After`.
- **Validation**: 422, the form again with each message next to its field and the typed values.

A double click sends the same form twice: the same values from the same browser within one
promise window are one report (an idempotency key made from the CSRF value and the body).
Forms are parsed here (URL-encoded, at most `MAX_BODY` bytes), as the webhooks do.
"""

from __future__ import annotations

import hashlib
import math
from datetime import datetime, time, timedelta
from typing import Any
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import ValidationError

from app.container import Container
from app.deps import ContainerDep, DbDep, NowDep
from app.errors import error_body
from app.throttle import SlidingWindow
from app.web import texts
from app.web.pages import SECURITY_HEADERS, DoubleSubmit, render, secure_cookies
from routing.phone import mask_phone
from routing.report import service as report_service
from routing.report import status
from routing.report.schemas import ReportCreate
from routing.types import Category, Language

router = APIRouter(include_in_schema=False)

RATE_LIMIT = 5
RATE_WINDOW = timedelta(minutes=10)
MAX_BODY = 32 * 1024
CSRF_COOKIE = "sos_report_csrf"
CSRF = DoubleSubmit(CSRF_COOKIE, "/report")
FIELDS = ("category", "callback_phone", "language", "description", "csrf", "when")
# What the status page offers a customer who would rather be called later: minutes from now, or
# tomorrow at 09:00 in the service's time zone.
CALLBACK_CHOICES = ("30", "60", "120", "240", "tomorrow")
# While nobody has the case yet, the customer may choose to be called later instead.
WAITING = (status.CustomerState.PAGING, status.CustomerState.MISSED)
ERROR_TEXT = {
    "category": "err_category",
    "callback_phone": "err_phone",
    "language": "err_language",
    "description": "err_description",
}
STATUS_HEADERS = {**SECURITY_HEADERS, "X-Robots-Tag": "noindex, nofollow"}

# `?lang=`: anything but a known language is ignored (never an error page).
LangQuery = Query(None)


# --- guards ------------------------------------------------------------------------------------


def _limiter(request: Request) -> SlidingWindow:
    """One window per application (so per process, and fresh for every test app)."""
    limiter = getattr(request.app.state, "report_limiter", None)
    if not isinstance(limiter, SlidingWindow):
        limiter = SlidingWindow(RATE_LIMIT, RATE_WINDOW)
        request.app.state.report_limiter = limiter
    return limiter


async def _read_form(request: Request) -> dict[str, str] | None:
    """The known fields of a URL-encoded body (first value of each); None when too large."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            return None
    try:
        pairs = parse_qsl(
            body.decode("utf-8", errors="replace"), keep_blank_values=True, max_num_fields=20
        )
    except ValueError:
        return None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in FIELDS:
            form.setdefault(name, value)
    return form


def _validate(form: dict[str, str], lang: str) -> tuple[ReportCreate | None, dict[str, str]]:
    """The report to create, or None and a localised message per field."""
    t = texts.texts(lang)
    phone = form.get("callback_phone", "").strip()
    description = form.get("description", "").replace("\r\n", "\n").replace("\x00", "").strip()
    body = {
        "category": form.get("category", ""),
        "callback_phone": phone,
        "language": form.get("language") or lang,
        "description": description or None,
        "channel": "web",
    }
    try:
        return ReportCreate.model_validate(body), {}
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else ""
            errors.setdefault(field, t[ERROR_TEXT.get(field, "err_category")])
        if not phone:
            errors["callback_phone"] = t["err_phone_missing"]
        return None, errors


def _idempotency_key(csrf_value: str, data: ReportCreate, now: datetime, sla: int) -> str:
    window = int(now.timestamp()) // sla
    raw = f"{csrf_value}|{report_service.request_hash(data)}|{window}"
    return "web:" + hashlib.sha256(raw.encode()).hexdigest()


# --- the form ----------------------------------------------------------------------------------


def _form_page(
    container: Container,
    lang: str,
    *,
    state: str = "form",
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    return render(
        "report_form.html",
        status_code=status_code,
        state=state,
        lang=lang,
        t=texts.texts(lang),
        minutes=container.settings.sla_seconds // 60,
        categories=[str(c) for c in Category],
        languages=[str(lang) for lang in Language],
        values=context.pop("values", {}),
        errors=context.pop("errors", {}),
        **context,
    )


@router.get("/report", response_class=HTMLResponse)
async def report_form(
    request: Request, container: ContainerDep, lang: str | None = LangQuery
) -> HTMLResponse:
    """The empty form, in `?lang=`, else the browser's language, else Dutch. Sets the CSRF
    cookie (keeping a well-formed one, so two open tabs both work)."""
    ui = texts.pick(lang, request.headers.get("accept-language"))
    value = CSRF.value(request)
    response = _form_page(
        container, ui, values={"language": ui}, csrf=CSRF.field(container.secret_key, value)
    )
    CSRF.set(response, value, secure=secure_cookies(container.settings, request))
    return response


@router.post("/report", response_model=None)
async def submit_report(
    request: Request,
    container: ContainerDep,
    db: DbDep,
    now: NowDep,
    lang: str | None = LangQuery,
) -> Response:
    """Create a web report and redirect (303) to its status page; 403, 413, 422 or 429 pages
    otherwise (module docstring). Nothing is stored unless the answer is the redirect."""
    ui = texts.pick(lang, request.headers.get("accept-language"))
    form = await _read_form(request)
    if form is None:
        return _form_page(container, ui, state="too_large", status_code=413)
    if not CSRF.ok(container.secret_key, request, form.get("csrf", "")):
        return _form_page(container, ui, state="forbidden", status_code=403)
    limiter, client = _limiter(request), request.client.host if request.client else "unknown"
    wait = limiter.retry_after(client, now)
    if wait:
        page = _form_page(
            container, ui, state="limited", status_code=429, wait_minutes=math.ceil(wait / 60)
        )
        page.headers["Retry-After"] = str(wait)
        return page
    data, errors = _validate(form, ui)
    if data is None:
        values = {k: v for k, v in form.items() if k != "csrf"}
        return _form_page(
            container, ui, status_code=422, values=values, errors=errors, csrf=form["csrf"]
        )
    limiter.record(client, now)
    sla = container.settings.sla_seconds
    async with db.begin() as session:
        report, _ = await report_service.submit(
            session,
            data=data,
            now=now,
            sla_seconds=sla,
            prebreach_seconds=container.settings.prebreach_seconds,
            channel="web",
            idempotency_key=_idempotency_key(request.cookies[CSRF_COOKIE], data, now, sla),
        )
        token = await status.new_status_token(session, report, now=now)
    container.engine.trigger()
    return RedirectResponse(f"/status/{token}", status_code=303, headers=SECURITY_HEADERS)


# --- the status page ---------------------------------------------------------------------------


def _local(when: datetime, zone: str) -> str:
    return when.astimezone(ZoneInfo(zone)).strftime("%d-%m %H:%M")


def _message(view: status.CustomerView, t: dict[str, str], zone: str) -> str:
    if view.state == status.CustomerState.SCHEDULED and view.callback_at is not None:
        return t["state_scheduled"].format(time=_local(view.callback_at, zone))
    if view.state == status.CustomerState.ACCEPTED:
        return (
            t["state_accepted"].format(name=view.helper)
            if view.helper
            else t["state_accepted_anon"]
        )
    return t[f"state_{view.state}"]


def _clock(seconds: float) -> str:
    minutes, secs = divmod(max(0, math.ceil(seconds)), 60)
    return f"{minutes}:{secs:02d}"


def _language(lang: str | None, view: status.CustomerView) -> str:
    return lang if lang in texts.LANGUAGES else texts.pick(view.language)


@router.get("/status/{token}.json", response_model=None)
async def status_json(
    token: str, container: ContainerDep, db: DbDep, now: NowDep, lang: str | None = LangQuery
) -> JSONResponse:
    """What the status page polls: reference, state, a sentence in the page's language, the
    helper's first name, the deadline and the server's time. Nothing else about anyone."""
    async with db() as session:
        report = await status.find_by_status_token(session, token)
        view = await status.customer_view(session, report, now=now) if report else None
    if view is None:
        body = error_body("not_found", "no such status page", "token")
        return JSONResponse(body, status_code=404, headers=STATUS_HEADERS)
    t = texts.texts(_language(lang, view))
    return JSONResponse(
        {
            "reference": view.reference,
            "state": str(view.state),
            "message": _message(view, t, container.settings.time_zone),
            "helper": view.helper,
            "deadline_at": view.deadline_at.isoformat(),
            "now": now.isoformat(),
        },
        headers=STATUS_HEADERS,
    )


@router.get("/status/{token}", response_class=HTMLResponse)
async def status_page(
    token: str,
    container: ContainerDep,
    db: DbDep,
    now: NowDep,
    request: Request,
    lang: str | None = LangQuery,
    callback_error: bool = Query(False, alias="callback_error", include_in_schema=False),
) -> HTMLResponse:
    """The case's page: reference, what is happening, the countdown, what to do meanwhile, and a
    form to be called later instead. Unknown token → 404. `status.js` keeps it current; without
    script a reload does."""
    async with db() as session:
        report = await status.find_by_status_token(session, token)
        view = await status.customer_view(session, report, now=now) if report else None
    if view is None:
        ui = texts.pick(lang, request.headers.get("accept-language"))
        page = render("status.html", status_code=404, state="unknown", lang=ui, t=texts.texts(ui))
        page.headers.update(STATUS_HEADERS)
        return page
    ui = _language(lang, view)
    t = texts.texts(ui)
    minutes = container.settings.sla_seconds // 60
    left = (view.deadline_at - now).total_seconds()
    page = render(
        "status.html",
        state=str(view.state),
        lang=ui,
        t=t,
        token=token,
        reference=view.reference,
        message=_message(view, t, container.settings.time_zone),
        callback_choices=CALLBACK_CHOICES if view.state in WAITING else (),
        callback_error=callback_error,
        minutes=minutes,
        countdown=t["time_left"].format(time=_clock(left))
        if left > 0
        else t["time_over"].format(minutes=minutes),
        deadline_at=view.deadline_at.isoformat(),
        now=now.isoformat(),
        we_call=t["we_call"].format(phone=mask_phone(view.callback_phone)),
    )
    page.headers.update(STATUS_HEADERS)
    return page


def _callback_time(choice: str, now: datetime, zone: str) -> datetime | None:
    if choice == "tomorrow":
        local = now.astimezone(ZoneInfo(zone))
        tomorrow = (local + timedelta(days=1)).date()
        return datetime.combine(tomorrow, time(9, 0), tzinfo=ZoneInfo(zone))
    if choice in CALLBACK_CHOICES:
        return now + timedelta(minutes=int(choice))
    return None


@router.post("/status/{token}/callback", response_model=None)
async def status_callback(
    token: str,
    container: ContainerDep,
    db: DbDep,
    now: NowDep,
    request: Request,
    lang: str | None = LangQuery,
) -> Response:
    """The customer asks to be called later: paging stops until then, and the promise counts
    from then. The secret token in the path is what allows it. Back to the status page."""
    form = await _read_form(request)
    suffix = f"?lang={lang}" if lang in texts.LANGUAGES else ""
    when = _callback_time((form or {}).get("when", ""), now, container.settings.time_zone)
    if when is None:
        sep = "&" if suffix else "?"
        return RedirectResponse(
            f"/status/{token}{suffix}{sep}callback_error=1",
            status_code=303,
            headers=SECURITY_HEADERS,
        )
    settings = container.settings
    async with db.begin() as session:
        report = await status.find_by_status_token(session, token)
        if report is None:
            return Response(status_code=404, headers=STATUS_HEADERS)
        if status.state_of(report, now) in WAITING:
            await report_service.request_callback(
                session,
                report_id=report.id,
                at=when,
                now=now,
                sla_seconds=settings.sla_seconds,
                prebreach_seconds=settings.prebreach_seconds,
                time_zone=settings.time_zone,
            )
    container.engine.trigger()
    return RedirectResponse(f"/status/{token}{suffix}", status_code=303, headers=SECURITY_HEADERS)
