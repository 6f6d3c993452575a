"""Vonage webhooks: page calls (answer NCCO, keypress, call events), SMS status, inbound SMS, the
status of texts that are not pages, bridge calls.

Every request must carry Vonage's signed JWT (`Authorization: Bearer`, HS256 with the signature
secret) whose `payload_hash` is the SHA-256 of the body and whose `iat` is recent by our clock;
otherwise 403 before anything changes. Handlers record what happened and answer at once; the
engine does the rest. Replays change nothing: call and delivery states only move forward, an
inbound SMS is handled once per `message_uuid`, a second acceptance finds the report taken.

Vonage's token covers the body, not the URL: a signed body posted to another row's URL must not
act there. Status webhooks name their call or message, and one about another is ignored; a
keypress or a bridge call event about a call other than the row's is refused (403).

What these handlers decide is the same as for Twilio (`app/api/webhooks/twilio.py`): only a
keypress of 1 is a human, voicemail never is, and a status webhook about a page tells the
failover breaker that its provider is still reporting (`Container.receipt`). An SMS reply to
staff cannot be sent inline as with TwiML, so it is queued as an outbox text (sent after commit).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException

from app.container import Container
from app.deps import ContainerDep, DbDep, NowDep
from app.limits import Limits
from providers.base import Channel, DeliveryUpdate
from providers.vonage import ncco, signature
from providers.vonage.config import VonageConfig
from providers.vonage.senders import PROVIDER, page_path
from providers.vonage.webhooks import (
    BRIDGE_STATUS,
    TextStatus,
    call_state,
    call_text_status,
    digits,
    inbound_sms,
    is_machine,
    message_state,
    sms_text_status,
    text,
)
from routing.bridge import service as bridge
from routing.bridge.models import BridgeCall
from routing.errors import ValidationFailed
from routing.inbound import service as inbound
from routing.notify import delivery, outbox
from routing.notify import service as notify
from routing.page import messages
from routing.page import service as page_service
from routing.page.models import Page
from routing.phone import normalize_phone
from routing.report.models import Report
from routing.staff.models import Staff

router = APIRouter(prefix="/webhooks/vonage", tags=["vonage webhooks"], include_in_schema=False)

RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]


def _config(container: ContainerDep) -> VonageConfig:
    if container.vonage is None:
        raise HTTPException(404, "Vonage is not configured")
    return container.vonage


Config = Annotated[VonageConfig, Depends(_config)]


async def signed_json(request: Request, config: Config, now: NowDep) -> dict[str, Any]:
    """The JSON Vonage posted, once its signed JWT checks out; 403 otherwise."""
    body = await request.body()
    verified = signature.claims(
        request.headers.get("authorization", ""),
        body,
        secret=config.signature_secret,
        now=now,
        api_key=config.api_key,
    )
    if verified is None:
        raise HTTPException(403, "invalid Vonage signature")
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        raise ValidationFailed("the body is not a JSON object", field="body")
    return payload


Payload = Annotated[dict[str, Any], Depends(signed_json)]


def answer(document: ncco.Ncco) -> JSONResponse:
    return JSONResponse(document)


def no_content() -> Response:
    return Response(status_code=204)


GOODBYE = ncco.say_only(text="Goodbye.", language="en")


async def _context(session: AsyncSession, page_id: int) -> tuple[Staff, Report] | None:
    page = await session.get(Page, page_id)
    if page is None:
        return None
    staff = await session.get(Staff, page.staff_id)
    report = await session.get(Report, page.report_id)
    assert staff is not None
    assert report is not None
    return staff, report


def _spoken(session: AsyncSession, said: str, report: Report, now: datetime) -> str:
    """What a page call says about `report`, through the content guard."""
    return notify.guarded(session, said, report_id=report.id, now=now, where="a spoken NCCO")


@router.post("/pages/{page_id}/answer")
async def page_call_answered(
    page_id: RowId, _: Payload, config: Config, db: DbDep, now: NowDep
) -> JSONResponse:
    """The paged colleague picked up: say what it is and listen for 1."""
    async with db.begin() as session:
        context = await _context(session, page_id)
        if context is None:
            return answer(GOODBYE)
        staff, report = context
        language = messages.staff_language(staff.languages)
        if report.acknowledged_by_id not in (None, staff.id):
            holder = await session.get(Staff, report.acknowledged_by_id or "")
            taken = messages.text(
                messages.VOICE_TAKEN, language, name=holder.name if holder else "?"
            )
            return answer(
                ncco.say_only(text=_spoken(session, taken, report, now), language=language)
            )
        prompt = messages.voice_prompt(
            language=language, category=report.category, reference=report.reference
        )
        prompt = _spoken(session, prompt, report, now)
    input_url = config.url(page_path(page_id, "input"))
    return answer(ncco.ask_for_keypress(prompt=prompt, language=language, input_url=input_url))


@router.post("/pages/{page_id}/input")
async def page_call_keypress(
    page_id: RowId, payload: Payload, container: ContainerDep, db: DbDep, now: NowDep
) -> JSONResponse:
    """Only a keypress is a human: 1 accepts (the first wins); anything else ends the call."""
    async with db.begin() as session:
        context = await _context(session, page_id)
        if context is None:
            return answer(GOODBYE)
        staff, report = context
        if _another_call(await session.get(Page, page_id), payload):
            raise HTTPException(403, "this keypress is about another call")
        language = messages.staff_language(staff.languages)
        if digits(payload) != "1":
            no_key = _spoken(session, messages.text(messages.VOICE_NO_KEY, language), report, now)
            return answer(ncco.say_only(text=no_key, language=language))
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
        return answer(ncco.say_only(text=said, language=language))
    room = bridge.room_name(report.id)
    failover = container.failover(Channel.VOICE)
    if failover is not None:
        failover.room_is_on(room, PROVIDER)  # the customer must be called into this one
    return answer(ncco.say_and_join(text=said, language=language, room=room))


@router.post("/pages/{page_id}/event", status_code=204)
async def page_call_event(
    page_id: RowId, payload: Payload, container: ContainerDep, now: NowDep
) -> Response:
    """Ringing, answered, voicemail or over: a call that ends without a keypress is a missed
    page, and a machine is never a human (the page fails and the call is ended)."""
    uuid = text(payload, "uuid")
    if uuid:
        container.receipt(Channel.VOICE, PROVIDER, page_id)
        state, detail = call_state(text(payload, "status"))
        update_ = DeliveryUpdate(uuid, state, detail) if state else None
        await _call_progress(container, page_id, uuid, now, update_, machine=is_machine(payload))
    return no_content()


async def _call_progress(
    container: Container,
    page_id: int,
    uuid: str,
    now: datetime,
    update_: DeliveryUpdate | None,
    *,
    machine: bool,
) -> None:
    async with container.db.begin() as session:
        await page_service.call_progress(
            session,
            page_id=page_id,
            external_id=uuid,
            update_=update_,
            now=now,
            machine=machine,
        )
    container.engine.trigger()


@router.post("/pages/{page_id}/sms-status", status_code=204)
async def page_sms_status(
    page_id: RowId, payload: Payload, container: ContainerDep, db: DbDep, now: NowDep
) -> Response:
    uuid = text(payload, "message_uuid")
    if not uuid:
        return no_content()
    container.receipt(Channel.SMS, PROVIDER, page_id)
    state, detail = message_state(text(payload, "status"), payload.get("error"))
    if state is not None:
        async with db.begin() as session:
            page = await session.get(Page, page_id)
            if page is not None and page.external_id in (None, uuid):
                await page_service.apply_delivery_update(
                    session, page_id=page_id, update_=DeliveryUpdate(uuid, state, detail), now=now
                )
        container.engine.trigger()
    return no_content()


@router.post("/sms", status_code=204)
async def inbound_message(
    payload: Payload, container: ContainerDep, db: DbDep, now: NowDep, limits: Limits
) -> Response:
    """An SMS to our Vonage number: a staff member answering a page, or a customer asking for
    help. The answer goes out as an outbox text (the Messages API has no inline reply)."""
    sms = inbound_sms(payload)
    if not sms.message_uuid:
        return no_content()
    async with db.begin() as session:
        if not await inbound.first_time(session, f"vonage:{sms.message_uuid}", now):
            return no_content()  # redelivered: already handled
        staff = await inbound.staff_by_phone(session, sms.from_)
        if staff:
            reply = await inbound.staff_sms(session, staff=staff, body=sms.body, now=now)
            language, staff_id = messages.staff_language(staff[0].languages), staff[0].id
        else:
            try:
                phone = normalize_phone(sms.from_)
            except ValueError:
                return no_content()  # a short code or alphanumeric sender
            limits.phone(phone)
            reply, _ = await inbound.customer_sms(
                session,
                phone=phone,
                body=sms.body,
                now=now,
                sla_seconds=container.settings.sla_seconds,
                prebreach_seconds=container.settings.prebreach_seconds,
            )
            language, staff_id = "nl", None  # an SMS: the language only matters when spoken
        if reply is not None:
            await outbox.queue(
                session,
                kind="reply",
                channel=outbox.SMS,
                to=sms.from_,
                language=language,
                body=reply,
                now=now,
                staff_id=staff_id,
            )
    container.engine.trigger()
    return no_content()


@router.post("/texts/{message_id}/sms-status", status_code=204)
async def text_sms_status(
    message_id: RowId, payload: Payload, container: ContainerDep, now: NowDep
) -> Response:
    """How an SMS that is not a page went. States only move forward; a replay changes nothing."""
    await _text_status(container, message_id, sms_text_status(payload), now)
    return no_content()


@router.post("/texts/{message_id}/call-event", status_code=204)
async def text_call_event(
    message_id: RowId, payload: Payload, container: ContainerDep, now: NowDep
) -> Response:
    """How a call that spoke a text (a verification code) went."""
    await _text_status(container, message_id, call_text_status(payload), now)
    return no_content()


async def _text_status(
    container: Container, message_id: int, status: TextStatus, now: datetime
) -> None:
    if status.state is None or not status.external_id:
        return
    async with container.db.begin() as session:
        await delivery.apply_status(
            session,
            message_id=message_id,
            external_id=status.external_id,
            provider=PROVIDER,
            state=status.state,
            detail=status.detail,
            now=now,
        )


@router.post("/bridge/{call_id}/event", status_code=204)
async def bridge_call_event(call_id: RowId, payload: Payload, db: DbDep, now: NowDep) -> Response:
    """How a bridge call went: a customer who does not pick up is on the timeline."""
    status = BRIDGE_STATUS.get(text(payload, "status"))
    async with db.begin() as session:
        if _another_call(await session.get(BridgeCall, call_id), payload):
            raise HTTPException(403, "this event is about another call")
        if status is not None:
            await bridge.call_status(session, call_id=call_id, status=status, now=now)
    return no_content()


def _another_call(row: Page | BridgeCall | None, payload: dict[str, Any]) -> bool:
    """Whether the call this webhook names (`uuid`) is not the one placed for `row`."""
    return row is not None and row.external_id not in (None, text(payload, "uuid"))
