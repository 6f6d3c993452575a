"""Slack interactivity: `POST /webhooks/slack/interactive`, where chat pages' Accept clicks arrive.

- The signature is checked first, over the raw body, with `SOS_SLACK__SIGNING_SECRET` and the
  container clock (`X-Slack-Request-Timestamp` within 300 s): 403 when missing, wrong or stale
  (as for Twilio and Vonage), and nothing changes. 404 while Slack is not configured.
- A click counts once (its user and `action_ts` are recorded in the same transaction as the accept):
  a redelivered or replayed request changes nothing.
- The clicker is the staff member with that chat id. They accept for themselves, also on a page
  that was meant for someone else (a post in a shared channel); someone else already holding the
  report is named to them; a chat user who is no staff member is told they are not on the rota.
- Slack needs an answer within 3 s and ignores the body of the answer to a `block_actions` request,
  so we answer an empty 200 as soon as the transaction commits, and only then, after the response,
  replace the message ("Accepted by Anna", without the button) or tell the clicker (an ephemeral
  line) through the Web API. That update is cosmetic and best effort: the acceptance is already
  committed, and a failed update is logged, never retried, and never blocks the answer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException

from app.deps import ContainerDep, DbDep, NowDep
from providers.base import Channel, ProviderError
from providers.registry import UnsupportedChannel
from providers.slack import signature, webhooks
from providers.slack.sender import SlackChat
from providers.slack.webhooks import AcceptClick
from routing.errors import AlreadyAcknowledged
from routing.inbound import service as inbound
from routing.notify import service as notify
from routing.page.models import Page
from routing.report import service as report_service
from routing.report.models import Report
from routing.staff.models import Staff

log = logging.getLogger(__name__)

router = APIRouter(prefix="/webhooks/slack", tags=["slack webhooks"], include_in_schema=False)

VIA = "chat button"
NOT_ON_ROTA = "You are not on the rota, so you cannot accept SOS reports."
NO_SUCH_PAGE = "This page no longer exists."


def _chat(container: ContainerDep) -> SlackChat:
    """The Slack sender, when chat pages go to Slack and clicks can be verified; 404 otherwise."""
    try:
        sender = container.registry.sender_for(Channel.CHAT)
    except UnsupportedChannel:
        sender = None
    configured = container.settings.slack.signing_secret.get_secret_value()
    if not isinstance(sender, SlackChat) or not configured:
        raise HTTPException(404, "Slack is not configured")
    return sender


Chat = Annotated[SlackChat, Depends(_chat)]


async def signed_body(request: Request, container: ContainerDep, _: Chat) -> bytes:
    """The raw body Slack posted, once its signature and timestamp check out."""
    body = await request.body()
    timestamp = request.headers.get("x-slack-request-timestamp", "")
    given = request.headers.get("x-slack-signature", "")
    if not timestamp or not given:
        raise HTTPException(403, "the Slack signature or timestamp is missing")
    problem = signature.problem(
        secret=container.settings.slack.signing_secret.get_secret_value(),
        timestamp=timestamp,
        body=body,
        signature=given,
        now=container.clock.now().timestamp(),
    )
    if problem is not None:
        raise HTTPException(403, problem)
    return body


SignedBody = Annotated[bytes, Depends(signed_body)]


@dataclass(frozen=True, slots=True)
class Reply:
    """What the clicker sees after the answer: the message replaced, or a line only for them."""

    accepted_by: str | None = None
    category: str = ""
    reference: str = ""
    tell: str | None = None


@router.post("/interactive")
async def interactive(
    body: SignedBody,
    chat: Chat,
    container: ContainerDep,
    db: DbDep,
    now: NowDep,
    after_response: BackgroundTasks,
) -> Response:
    """An interaction from Slack. Only a click on a page's Accept button changes anything."""
    try:
        click = webhooks.accept_click(body)
    except ValueError as exc:
        raise HTTPException(400, "not a Slack interaction payload") from exc
    if click is None:
        return Response(status_code=200)
    async with db.begin() as session:
        reply = await handle_click(session, click, now)
    container.engine.trigger()
    if reply is not None:
        after_response.add_task(show, chat, click, reply)
    return Response(status_code=200)


async def handle_click(session: AsyncSession, click: AcceptClick, now: datetime) -> Reply | None:
    """Accept the clicked page's report for the clicker; `None` for a click already handled."""
    if not await inbound.first_time(session, click.provider_id, now):
        return None
    page = await session.get(Page, click.page_id)
    if page is None or page.channel != Channel.CHAT:
        return Reply(tell=NO_SUCH_PAGE)
    members = await inbound.staff_by_chat_id(session, click.user_id)
    if not members:
        return Reply(tell=NOT_ON_ROTA)
    clicker = next((m for m in members if m.id == page.staff_id), members[0])
    report, holder_name = await accept_as(session, page=page, staff=clicker, now=now)
    # A name goes back into the chat: through the content guard, noted on the report.
    holder_name = notify.guarded(
        session, holder_name, report_id=report.id, now=now, where="a chat message"
    )
    if report.acknowledged_by_id != clicker.id:
        return Reply(tell=f"{holder_name} already has it")
    return Reply(accepted_by=holder_name, category=report.category, reference=report.reference)


async def accept_as(
    session: AsyncSession, *, page: Page, staff: Staff, now: datetime
) -> tuple[Report, str]:
    """Acknowledge `page`'s report for `staff`; returns the report and its holder's name.

    The person paged accepts through `accept_page` (their page counts as answered). Anyone else
    on the rota acknowledges the report directly, and is called into the room like any acceptor.
    """
    if staff.id == page.staff_id:
        result = await inbound.accept_page(session, page_id=page.id, now=now, via=VIA)
        return result.report, result.holder_name
    try:
        report = await inbound.accept_report(
            session, report_id=page.report_id, staff=staff, now=now, how=VIA
        )
    except AlreadyAcknowledged as taken:
        return await report_service.get(session, page.report_id), taken.holder_name
    return report, staff.name


async def show(chat: SlackChat, click: AcceptClick, reply: Reply) -> None:
    """After the response: replace the clicked message, or tell the clicker. Best effort."""
    try:
        if reply.accepted_by is not None:
            await chat.show_accepted(
                channel=click.channel_id,
                ts=click.message_ts,
                holder_name=reply.accepted_by,
                category=reply.category,
                reference=reply.reference,
            )
        if reply.tell is not None:
            await chat.tell(channel=click.channel_id, user=click.user_id, text=reply.tell)
    except ProviderError as exc:
        log.warning("slack: could not show the outcome of page %s: %s", click.page_id, exc.detail)
