"""Paging staff through Twilio: a voice call that asks for a keypress, or an SMS.

Every callback URL carries our page id, so a status callback can always be matched to its page,
even when the send itself timed out and we never learned the call's sid.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from providers.base import (
    Channel,
    DeliveryState,
    DeliveryUpdate,
    OutboundPage,
    ProviderError,
    RoomCall,
    SendResult,
)
from providers.twilio.client import TwilioClient
from providers.twilio.webhooks import call_state, message_state

PROVIDER = "twilio"


def page_path(page_id: int, leaf: str) -> str:
    return f"/webhooks/twilio/pages/{page_id}/{leaf}"


class TwilioVoice:
    name = PROVIDER
    channels = frozenset({Channel.VOICE})

    def __init__(self, client: TwilioClient) -> None:
        self.client = client

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

    def __init__(self, client: TwilioClient) -> None:
        self.client = client

    async def send(self, page: OutboundPage) -> SendResult:
        config = self.client.config
        sid = await self.client.create_message(
            to=page.to,
            body=page.text,
            status_callback=config.url(page_path(page.page_id, "sms-status")),
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


if TYPE_CHECKING:
    from providers.base import Canceller, MessageSender, RoomDialer, StatusChecker

    _voice: type[MessageSender] = TwilioVoice
    _voice_status: type[StatusChecker] = TwilioVoice
    _voice_cancel: type[Canceller] = TwilioVoice
    _voice_rooms: type[RoomDialer] = TwilioVoice
    _sms: type[MessageSender] = TwilioSms
    _sms_status: type[StatusChecker] = TwilioSms
