"""Paging staff through Vonage: a call that asks for a keypress, or an SMS; and texts that are
not pages (a customer's receipt by SMS, a verification code by SMS or by a spoken call).

As with Twilio, every callback URL carries our page id (or message id), so a webhook can always
be matched to its row, even when the send itself timed out and we never learned the uuid. Every
text passes the content guard that `app/` hands in, as a last line of defence.

A page call fetches its NCCO from us when answered (`answer_url`), so what it says is decided at
that moment ("Anna has already accepted"), exactly like the Twilio page call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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
    screen,
)
from providers.vonage import ncco
from providers.vonage.client import VonageClient
from providers.vonage.webhooks import call_state

PROVIDER = "vonage"
SMS_TEXT_MAX = 1000  # the Messages API's limit for an SMS text


def page_path(page_id: int, leaf: str) -> str:
    return f"/webhooks/vonage/pages/{page_id}/{leaf}"


def text_path(message_id: int, leaf: str) -> str:
    """Where Vonage reports on a text that is not a page (`sms-status` or `call-event`)."""
    return f"/webhooks/vonage/texts/{message_id}/{leaf}"


def bridge_path(call_id: int) -> str:
    return f"/webhooks/vonage/bridge/{call_id}/event"


class VonageVoice:
    name = PROVIDER
    channels = frozenset({Channel.VOICE})

    def __init__(self, client: VonageClient, *, guard: ContentGuard | None = None) -> None:
        self.client = client
        self.guard = guard

    async def send(self, page: OutboundPage) -> SendResult:
        config = self.client.config
        uuid = await self.client.create_call(
            to=page.to,
            answer_url=config.url(page_path(page.page_id, "answer")),
            event_url=config.url(page_path(page.page_id, "event")),
            ring_seconds=config.ring_seconds,
            detect_machine=True,
        )
        return SendResult(PROVIDER, uuid)

    async def send_text(self, text: OutboundText) -> SendResult:
        """A call that speaks `text.body` (a verification code, spelled out) and hangs up."""
        config = self.client.config
        spoken = screen(self.guard, text.body, where=f"spoken text {text.message_id}")
        uuid = await self.client.create_call(
            to=text.to,
            ncco=ncco.say_only(text=spoken, language=text.language),
            event_url=config.url(text_path(text.message_id, "call-event")),
            ring_seconds=config.ring_seconds,
        )
        return SendResult(PROVIDER, uuid)

    async def status(self, page_id: int, external_id: str | None) -> DeliveryUpdate | None:
        del page_id
        if external_id is None:
            # Without a uuid only our event webhook can tell: its URL carries the page id.
            raise ProviderError("no call uuid yet; waiting for the event webhook")
        call = await self.client.fetch_call(external_id)
        if call is None:
            return None
        state, detail = call_state(str(call.get("status", "")))
        return DeliveryUpdate(external_id, state or DeliveryState.SENT, detail)

    async def cancel(self, external_id: str) -> None:
        await self.client.hang_up(external_id)

    async def call_into_room(self, call: RoomCall) -> SendResult:
        """Call someone into the report's conversation from our number (never a staff number).
        The staff leg opens and closes the room; the customer waits there for them."""
        config = self.client.config
        uuid = await self.client.create_call(
            to=call.to,
            ncco=ncco.join_room(room=call.room, starts_room=call.leg == "staff"),
            event_url=config.url(bridge_path(call.call_id)),
            ring_seconds=min(config.ring_seconds * 2, 120)
            if call.leg == "customer"
            else config.ring_seconds,
        )
        return SendResult(PROVIDER, uuid)


class VonageSms:
    """SMS pages and texts through the Messages API.

    Deliberately no `status` (not a `StatusChecker`): the Messages API cannot look a message up,
    so the reconciler treats an SMS whose send timed out as "cannot check", and only the status
    webhook (which carries the page id) can still settle it.
    """

    name = PROVIDER
    channels = frozenset({Channel.SMS})

    def __init__(self, client: VonageClient, *, guard: ContentGuard | None = None) -> None:
        self.client = client
        self.guard = guard

    async def send(self, page: OutboundPage) -> SendResult:
        config = self.client.config
        uuid = await self.client.send_sms(
            to=page.to,
            text=screen(self.guard, page.text, where=f"SMS page {page.page_id}")[:SMS_TEXT_MAX],
            status_url=config.url(page_path(page.page_id, "sms-status")),
            reference=f"page-{page.page_id}",
            ttl_seconds=config.sms_ttl_seconds,
        )
        return SendResult(PROVIDER, uuid)

    async def send_text(self, text: OutboundText) -> SendResult:
        config = self.client.config
        uuid = await self.client.send_sms(
            to=text.to,
            text=screen(self.guard, text.body, where=f"SMS text {text.message_id}")[:SMS_TEXT_MAX],
            status_url=config.url(text_path(text.message_id, "sms-status")),
            reference=f"text-{text.message_id}",
            ttl_seconds=config.sms_ttl_seconds,
        )
        return SendResult(PROVIDER, uuid)


if TYPE_CHECKING:
    from providers.base import Canceller, MessageSender, RoomDialer, StatusChecker, TextSender

    _voice: type[MessageSender] = VonageVoice
    _voice_status: type[StatusChecker] = VonageVoice
    _voice_cancel: type[Canceller] = VonageVoice
    _voice_rooms: type[RoomDialer] = VonageVoice
    _voice_texts: type[TextSender] = VonageVoice
    _sms: type[MessageSender] = VonageSms
    _sms_texts: type[TextSender] = VonageSms
