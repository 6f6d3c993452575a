"""Twilio webhooks: page calls (TwiML, keypress, status, voicemail), SMS status, inbound SMS,
the status of texts that are not pages (receipts, verification codes).

Every request is checked against `X-Twilio-Signature`, computed over SOS_PUBLIC_BASE_URL + the
raw path and query (never forwarded headers), and refused with 403 before anything changes.
Handlers record what happened and answer at once; the engine does the rest.

Every text we speak or reply passes the outbound-content guard: with the report known, what it
removed is a `content_blocked` event on that report.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException

from app.container import Container
from app.deps import ContainerDep, DbDep, NowDep
from app.limits import Limits
from providers.base import Channel, DeliveryUpdate
from providers.twilio import signature, twiml
from providers.twilio.config import TwilioConfig
from providers.twilio.senders import PROVIDER, page_path
from providers.twilio.webhooks import (
    call_state,
    inbound_sms,
    is_machine,
    message_state,
    text_status,
)
from routing import guard
from routing.bridge import service as bridge
from routing.inbound import service as inbound
from routing.inbound import sos_line
from routing.notify import delivery
from routing.notify import service as notify
from routing.page import messages
from routing.page import service as page_service
from routing.page.models import Page
from routing.phone import normalize_phone
from routing.pumping import service as pumping
from routing.report.models import Report
from routing.staff.models import Staff

router = APIRouter(prefix="/webhooks/twilio", tags=["twilio webhooks"], include_in_schema=False)

PageId = Annotated[int, Path(ge=1, le=2**63 - 1)]


def _config(container: ContainerDep) -> TwilioConfig:
    if container.twilio is None:
        raise HTTPException(404, "Twilio is not configured")
    return container.twilio


Config = Annotated[TwilioConfig, Depends(_config)]


async def signed_form(request: Request, config: Config) -> dict[str, str]:
    """The form Twilio posted, once its signature checks out; 403 otherwise."""
    body = (await request.body()).decode("utf-8", errors="replace")
    form = dict(parse_qsl(body, keep_blank_values=True))
    url = signature.public_url(
        config.public_base_url,
        request.scope.get("raw_path") or request.url.path.encode(),
        request.scope.get("query_string", b""),
    )
    given = request.headers.get("x-twilio-signature", "")
    if not signature.is_valid(config.auth_token, url, form, given):
        raise HTTPException(403, "invalid Twilio signature")
    return form


Form = Annotated[dict[str, str], Depends(signed_form)]


def xml(document: str) -> Response:
    return Response(document, media_type="text/xml")


def no_content() -> Response:
    return Response(status_code=204)


async def _context(session: AsyncSession, page_id: int) -> tuple[Page, Staff, Report] | None:
    page = await session.get(Page, page_id)
    if page is None:
        return None
    staff = await session.get(Staff, page.staff_id)
    report = await session.get(Report, page.report_id)
    assert staff is not None
    assert report is not None
    return page, staff, report


async def _holder_name(session: AsyncSession, report: Report) -> str:
    holder = await session.get(Staff, report.acknowledged_by_id or "")
    return holder.name if holder else "?"


def _spoken(session: AsyncSession, text: str, report: Report, now: datetime) -> str:
    """What a page call or the SOS line says about `report`, through the content guard."""
    return notify.guarded(session, text, report_id=report.id, now=now, where="spoken TwiML")


def _fixed(text: str) -> str:
    """A fixed prompt (menus, hold music text), through the guard too; no report to note it on."""
    return guard.scrub(text).text


GOODBYE = twiml.say_and_hang_up(text="Goodbye.", language="en")


@router.post("/pages/{page_id}/voice")
async def page_call_answered(
    page_id: PageId, _: Form, config: Config, db: DbDep, now: NowDep
) -> Response:
    """The paged colleague picked up: say what it is and listen for 1."""
    async with db.begin() as session:
        context = await _context(session, page_id)
        if context is None:
            return xml(GOODBYE)
        _page, staff, report = context
        language = messages.staff_language(staff.languages)
        if report.acknowledged_by_id not in (None, staff.id):
            name = await _holder_name(session, report)
            taken = messages.text(messages.VOICE_TAKEN, language, name=name)
            taken = _spoken(session, taken, report, now)
            return xml(twiml.say_and_hang_up(text=taken, language=language))
        prompt = messages.voice_prompt(
            language=language, category=report.category, reference=report.reference
        )
        prompt = _spoken(session, prompt, report, now)
    action = config.url(page_path(page_id, "digits"))
    return xml(twiml.ask_for_keypress(prompt=prompt, language=language, action_url=action))


@router.post("/pages/{page_id}/digits")
async def page_call_keypress(
    page_id: PageId,
    form: Form,
    config: Config,
    container: ContainerDep,
    db: DbDep,
    now: NowDep,
) -> Response:
    """Only a keypress is a human: 1 accepts (the first wins); anything else ends the call."""
    async with db.begin() as session:
        context = await _context(session, page_id)
        if context is None:
            return xml(GOODBYE)
        _page, staff, report = context
        language = messages.staff_language(staff.languages)
        if form.get("Digits", "").strip() != "1":
            no_key = _spoken(session, messages.text(messages.VOICE_NO_KEY, language), report, now)
            return xml(twiml.say_and_hang_up(text=no_key, language=language))
        result = await inbound.accept_page(
            session, page_id=page_id, now=now, via="keypress", on_call=True
        )
        won = result.report.acknowledged_by_id == staff.id
        said = (
            messages.text(messages.VOICE_CONNECTED, language)
            if won
            else messages.text(messages.VOICE_TAKEN, language, name=result.holder_name)
        )
        said = _spoken(session, said, report, now)
    container.engine.trigger()
    if not won:
        return xml(twiml.say_and_hang_up(text=said, language=language))
    if (failover := container.failover(Channel.VOICE)) is not None:
        failover.room_is_on(bridge.room_name(report.id), PROVIDER)  # the customer joins here
    return xml(
        twiml.say_and_join(
            text=said,
            language=language,
            room=f"sos-{report.id}",
            status_url=config.url(f"/webhooks/twilio/rooms/{report.id}"),
        )
    )


@router.post("/pages/{page_id}/call-status", status_code=204)
async def page_call_status(
    page_id: PageId, form: Form, container: ContainerDep, now: NowDep
) -> Response:
    """Ringing, answered, or over: a call that ends without a keypress is a missed page."""
    sid = form.get("CallSid", "")
    state, detail = call_state(form.get("CallStatus", ""))
    if sid:
        container.receipt(Channel.VOICE, PROVIDER, page_id)  # for the failover breaker
        update_ = DeliveryUpdate(sid, state, detail) if state else None
        await _call_progress(container, page_id, sid, now, update_=update_)
    return no_content()


async def _call_progress(
    container: Container,
    page_id: int,
    sid: str,
    now: datetime,
    *,
    update_: DeliveryUpdate | None = None,
    machine: bool = False,
) -> None:
    async with container.db.begin() as session:
        await page_service.call_progress(
            session, page_id=page_id, external_id=sid, update_=update_, now=now, machine=machine
        )
    container.engine.trigger()


@router.post("/pages/{page_id}/amd", status_code=204)
async def page_call_machine(
    page_id: PageId, form: Form, container: ContainerDep, now: NowDep
) -> Response:
    """Answering-machine detection: a voicemail is never a human. Fall back and hang up."""
    sid = form.get("CallSid", "")
    if is_machine(form) and sid:
        await _call_progress(container, page_id, sid, now, machine=True)
    return no_content()


@router.post("/pages/{page_id}/sms-status", status_code=204)
async def page_sms_status(
    page_id: PageId, form: Form, container: ContainerDep, db: DbDep, now: NowDep
) -> Response:
    sid = form.get("MessageSid", "")
    state, detail = message_state(form.get("MessageStatus", ""), form.get("ErrorCode"))
    if sid:
        container.receipt(Channel.SMS, PROVIDER, page_id)  # for the failover breaker
    if state is not None and sid:
        async with db.begin() as session:
            page = await session.get(Page, page_id)
            if page is not None and page.external_id in (None, sid):
                await page_service.apply_delivery_update(
                    session, page_id=page_id, update_=DeliveryUpdate(sid, state, detail), now=now
                )
        container.engine.trigger()
    return no_content()


@router.post("/rooms/{report_id}", status_code=204)
async def room_status(report_id: str, form: Form, db: DbDep, now: NowDep) -> Response:
    """Conference events for a report's room: a holding caller who hangs up is noted, so the
    acceptor's bridge calls them back."""
    del report_id
    if form.get("StatusCallbackEvent") == "participant-leave" and form.get("CallSid"):
        async with db.begin() as session:
            await sos_line.caller_left(session, call_sid=form["CallSid"][:64], now=now)
    return no_content()


@router.post("/sms")
async def inbound_message(
    form: Form, container: ContainerDep, db: DbDep, now: NowDep, limits: Limits
) -> Response:
    """An SMS to the SOS number: a staff member answering a page, or a customer asking for help."""
    sms = inbound_sms(form)
    async with db.begin() as session:
        if not await inbound.first_time(session, f"twilio:{sms.message_sid}", now):
            return xml(twiml.sms_reply(None))  # redelivered: already handled
        staff = await inbound.staff_by_phone(session, sms.from_)
        if staff:
            reply = await inbound.staff_sms(session, staff=staff, body=sms.body, now=now)
            if reply is not None:
                reply = notify.guarded(
                    session, reply, report_id=None, now=now, where="an SMS reply to staff"
                )
        else:
            try:
                phone = normalize_phone(sms.from_)
            except ValueError:
                return xml(twiml.sms_reply(None))  # a short code or alphanumeric sender
            limits.phone(phone)
            reply, _ = await inbound.customer_sms(
                session,
                phone=phone,
                body=sms.body,
                now=now,
                sla_seconds=container.settings.sla_seconds,
                prebreach_seconds=container.settings.prebreach_seconds,
            )
            reply = await pumping.screened(
                session,
                container.pumping,
                reply,
                to=phone,
                channel="sms",
                now=now,
                what="an SMS reply to the customer",
            )
    container.engine.trigger()
    return xml(twiml.sms_reply(reply))


# --- the SOS line ------------------------------------------------------------------------------


@router.post("/voice")
async def sos_line_call(
    form: Form, config: Config, db: DbDep, now: NowDep, limits: Limits
) -> Response:
    """A call to the SOS number: note when it arrived (the promise starts now), ask the language."""
    limits.phone(form.get("From", ""))
    async with db.begin() as session:
        await sos_line.call_arrived(
            session, call_sid=form.get("CallSid", "")[:64], caller=form.get("From", ""), now=now
        )
    return xml(
        twiml.menu(
            prompt=_fixed(sos_line.MENU_LANGUAGE),
            language="nl",
            action_url=config.url("/webhooks/twilio/voice/language?try=1"),
        )
    )


def _try(request: Request) -> int:
    try:
        return max(1, int(request.query_params.get("try", "1")))
    except ValueError:
        return 1


def _lang(request: Request) -> str:
    lang = request.query_params.get("lang", "nl")
    return lang if lang in ("nl", "en") else "nl"


@router.post("/voice/language")
async def sos_line_language(request: Request, form: Form, config: Config) -> Response:
    attempt = _try(request)
    language = sos_line.LANGUAGE_KEYS.get(form.get("Digits", "").strip())
    if language is None and attempt < sos_line.MENU_TRIES:
        return xml(
            twiml.menu(
                prompt=_fixed(sos_line.MENU_LANGUAGE),
                language="nl",
                action_url=config.url(f"/webhooks/twilio/voice/language?try={attempt + 1}"),
            )
        )
    language = language or "nl"
    return xml(
        twiml.menu(
            prompt=_fixed(sos_line.MENU_CATEGORY[language]),
            language=language,
            action_url=config.url(f"/webhooks/twilio/voice/category?lang={language}&try=1"),
        )
    )


@router.post("/voice/category")
async def sos_line_category(
    request: Request,
    form: Form,
    config: Config,
    container: ContainerDep,
    db: DbDep,
    now: NowDep,
) -> Response:
    """The report is made here (at the latest after a few silent tries: the line fails open)."""
    attempt, language = _try(request), _lang(request)
    category = sos_line.CATEGORY_KEYS.get(form.get("Digits", "").strip())
    if category is None and attempt < sos_line.MENU_TRIES:
        return xml(
            twiml.menu(
                prompt=_fixed(sos_line.MENU_CATEGORY[language]),
                language=language,
                action_url=config.url(
                    f"/webhooks/twilio/voice/category?lang={language}&try={attempt + 1}"
                ),
            )
        )
    async with db.begin() as session:
        report = await sos_line.report_for_call(
            session,
            call_sid=form.get("CallSid", "")[:64],
            caller=form.get("From", ""),
            language=language,
            category=str(category or "fraud"),
            now=now,
            sla_seconds=container.settings.sla_seconds,
            prebreach_seconds=container.settings.prebreach_seconds,
        )
        received = sos_line.RECEIVED[language].format(reference=messages.spelled(report.reference))
        text = _spoken(session, received, report, now)
    container.engine.trigger()
    return xml(
        twiml.hold_in_room(
            text=text,
            language=language,
            room=bridge.room_name(report.id),
            wait_url=config.url(f"/webhooks/twilio/voice/hold?lang={language}"),
            status_url=config.url(f"/webhooks/twilio/rooms/{report.id}"),
        )
    )


@router.post("/voice/hold")
async def sos_line_hold(request: Request, _: Form) -> Response:
    language = _lang(request)
    return xml(twiml.hold_message(text=_fixed(sos_line.HOLD[language]), language=language))


@router.post("/bridge/{call_id}/status", status_code=204)
async def bridge_call_status(call_id: PageId, form: Form, db: DbDep, now: NowDep) -> Response:
    """How a bridge call went: a customer who does not pick up is on the timeline."""
    status = form.get("CallStatus", "")
    async with db.begin() as session:
        await bridge.call_status(session, call_id=call_id, status=status, now=now)
    return no_content()


MessageIdQuery = Annotated[int, Query(alias="message", ge=1, le=2**63 - 1)]


@router.post("/message-status", status_code=204)
async def text_status_callback(
    message_id: MessageIdQuery, form: Form, container: ContainerDep, now: NowDep
) -> Response:
    """How a text that is not a page went: an SMS's `MessageStatus`, or the final `CallStatus`
    of a call that spoke a code. States only move forward; a duplicate changes nothing."""
    status = text_status(form)
    if status.state is not None and status.sid:
        async with container.db.begin() as session:
            await delivery.apply_status(
                session,
                message_id=message_id,
                external_id=status.sid,
                provider=PROVIDER,
                state=status.state,
                detail=status.detail,
                now=now,
            )
    return no_content()
