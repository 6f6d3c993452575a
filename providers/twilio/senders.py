"""Paging staff through Twilio: a voice call that asks for a keypress, or an SMS; and texts that
are not pages (a customer's receipt by SMS, a verification code by SMS or by a spoken call).

Every callback URL carries our page id (or message id), so a status callback can always be matched
to its row, even when the send itself timed out and we never learned the sid. Without a sid the
reconciler can also list what we placed to the staff member's number since shortly before the
page went out (`sent_to`): calls by start time plus those still queued, messages by sent date;
which of them is the page is the domain's decision. Every text passes the content guard that
`app/` hands in, as a last line of defence: the domain has screened it already and recorded what
it removed.
"""

from __future__ import annotations

from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from providers.base import (
    Channel,
    ContentGuard,
    DeliveryState,
    DeliveryUpdate,
    OutboundPage,
    OutboundText,
    ProviderError,
    RoomCall,
    SendResult,
    SentList,
    SentQuery,
    SentRecord,
    screen,
)
from providers.twilio import twiml
from providers.twilio.client import TwilioClient
from providers.twilio.twiml import MESSAGE_MAX
from providers.twilio.webhooks import call_state, message_state

PROVIDER = "twilio"


def page_path(page_id: int, leaf: str) -> str:
    return f"/webhooks/twilio/pages/{page_id}/{leaf}"


def text_status_path(message_id: int) -> str:
    """Where Twilio reports on a text (SMS or spoken call) that is not a page."""
    return f"/webhooks/twilio/message-status?message={message_id}"


def _created_at(resource: dict[str, Any]) -> datetime | None:
    """`date_created` (RFC 2822), or None when missing or unreadable."""
    try:
        return parsedate_to_datetime(str(resource["date_created"]))
    except (KeyError, TypeError, ValueError):
        return None


def _record(resource: dict[str, Any], *, body: bool) -> SentRecord:
    text = resource.get("body") if body else None
    return SentRecord(str(resource["sid"]), _created_at(resource), str(text) if text else None)


class TwilioVoice:
    name = PROVIDER
    channels = frozenset({Channel.VOICE})
    # A call waiting in Twilio's queue is asked for by its status: it shows at once.
    listed_within = 0.0

    def __init__(self, client: TwilioClient, *, guard: ContentGuard | None = None) -> None:
        self.client = client
        self.guard = guard

    async def send(self, page: OutboundPage) -> SendResult:
        config = self.client.config
        sid = await self.client.create_call(
            to=page.to,
            url=config.url(page_path(page.page_id, "voice")),
            status_callback=config.url(page_path(page.page_id, "call-status")),
            amd_callback=config.url(page_path(page.page_id, "amd")),
            ring_seconds=config.ring_seconds,
        )
        return SendResult(PROVIDER, sid)

    async def send_text(self, text: OutboundText) -> SendResult:
        """A call that speaks `text.body` (a verification code, spelled out) and hangs up."""
        config = self.client.config
        spoken = screen(self.guard, text.body, where=f"spoken text {text.message_id}")
        sid = await self.client.create_spoken_call(
            to=text.to,
            twiml=twiml.say_only(text=spoken, language=text.language),
            status_callback=config.url(text_status_path(text.message_id)),
            ring_seconds=config.ring_seconds,
        )
        return SendResult(PROVIDER, sid)

    async def status(self, page_id: int, external_id: str | None) -> DeliveryUpdate | None:
        del page_id
        if external_id is None:
            # Without a sid only our callback can tell: it carries the page id.
            raise ProviderError("no call sid yet; waiting for the status callback")
        call = await self.client.fetch_call(external_id)
        if call is None:
            return None
        state, detail = call_state(str(call.get("status", "")))
        return DeliveryUpdate(external_id, state or DeliveryState.SENT, detail)

    async def sent_to(self, query: SentQuery) -> SentList:
        """Calls to `query.to` still queued, then those dialled since `query.since` (in this
        order, so a call leaving the queue between the two requests is in the second)."""
        queued, all_queued = await self.client.list_calls(to=query.to, status="queued")
        started, all_started = await self.client.list_calls(to=query.to, started_after=query.since)
        calls = {str(c["sid"]): c for c in [*queued, *started]}
        records = tuple(_record(c, body=False) for c in calls.values())
        return SentList(records, complete=all_queued and all_started)

    async def cancel(self, external_id: str) -> None:
        await self.client.end_call(external_id)

    async def call_into_room(self, call: RoomCall) -> SendResult:
        """Dial someone into the conference room from the SOS number (never a staff number)."""
        config = self.client.config
        sid = await self.client.add_participant(
            conference=call.room,
            to=call.to,
            status_callback=config.url(f"/webhooks/twilio/bridge/{call.call_id}/status"),
            ring_seconds=config.ring_seconds * 2 if call.leg == "customer" else config.ring_seconds,
            starts_room=call.leg == "staff",
        )
        return SendResult(PROVIDER, sid)


class TwilioSms:
    name = PROVIDER
    channels = frozenset({Channel.SMS})

    def __init__(self, client: TwilioClient, *, guard: ContentGuard | None = None) -> None:
        self.client = client
        self.guard = guard
        # Messages are listed by their sent date, which a message still in Twilio's queue does
        # not have yet; one held there past its validity period fails, never sent.
        self.listed_within = float(client.config.sms_validity_seconds)

    async def send(self, page: OutboundPage) -> SendResult:
        config = self.client.config
        sid = await self.client.create_message(
            to=page.to,
            body=screen(self.guard, page.text, where=f"SMS page {page.page_id}")[:MESSAGE_MAX],
            status_callback=config.url(page_path(page.page_id, "sms-status")),
            validity_seconds=config.sms_validity_seconds,
        )
        return SendResult(PROVIDER, sid)

    async def send_text(self, text: OutboundText) -> SendResult:
        config = self.client.config
        sid = await self.client.create_message(
            to=text.to,
            body=screen(self.guard, text.body, where=f"SMS text {text.message_id}")[:MESSAGE_MAX],
            status_callback=config.url(text_status_path(text.message_id)),
            validity_seconds=config.sms_validity_seconds,
        )
        return SendResult(PROVIDER, sid)

    async def status(self, page_id: int, external_id: str | None) -> DeliveryUpdate | None:
        del page_id
        if external_id is None:
            raise ProviderError("no message sid yet; waiting for the status callback")
        message = await self.client.fetch_message(external_id)
        if message is None:
            return None
        state, detail = message_state(str(message.get("status", "")), message.get("error_code"))
        return DeliveryUpdate(external_id, state or DeliveryState.SENT, detail)

    async def sent_to(self, query: SentQuery) -> SentList:
        """Messages to `query.to` sent since `query.since`, with their bodies (our accept link
        tells our pages apart)."""
        messages, complete = await self.client.list_messages(to=query.to, sent_after=query.since)
        return SentList(tuple(_record(m, body=True) for m in messages), complete=complete)


if TYPE_CHECKING:
    from providers.base import (
        Canceller,
        MessageSender,
        RoomDialer,
        SentFinder,
        StatusChecker,
        TextSender,
    )

    _voice: type[MessageSender] = TwilioVoice
    _voice_status: type[StatusChecker] = TwilioVoice
    _voice_cancel: type[Canceller] = TwilioVoice
    _voice_rooms: type[RoomDialer] = TwilioVoice
    _sms: type[MessageSender] = TwilioSms
    _sms_status: type[StatusChecker] = TwilioSms
    _voice_texts: type[TextSender] = TwilioVoice
    _sms_texts: type[TextSender] = TwilioSms
    _voice_finder: type[SentFinder] = TwilioVoice
    _sms_finder: type[SentFinder] = TwilioSms
