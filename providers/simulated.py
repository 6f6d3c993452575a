"""Simulated phones: the zero-setup provider. Every page "rings" a phone that exists only here.

Pages are recorded in memory and logged; in the demo a simulated staff member accepts through the
CLI or `POST /v1/simulator/pages/{page_id}/accept`, exactly as they would press 1 on a real call.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from providers.base import Channel, OutboundPage, OutboundText, RoomCall, SendResult

log = logging.getLogger(__name__)


class SimulatedPhones:
    name = "simulated"
    channels = frozenset({Channel.VOICE, Channel.SMS, Channel.CHAT})

    def __init__(self, *, keep: int = 1000) -> None:
        self.sent: list[OutboundPage] = []
        self.room_calls: list[RoomCall] = []
        self.texts: list[OutboundText] = []
        self._keep = keep

    async def send(self, page: OutboundPage) -> SendResult:
        self.sent.append(page)
        del self.sent[: -self._keep]
        log.info(
            "simulated %s page %s to %s (report %s)",
            page.channel,
            page.page_id,
            page.staff_name,
            page.reference,
        )
        return SendResult(provider=self.name, external_id=f"SIM{page.page_id}")

    async def send_text(self, text: OutboundText) -> SendResult:
        """A receipt or verification code "arrives" on a simulated phone (`GET
        /v1/simulator/texts` shows it)."""
        self.texts.append(text)
        del self.texts[: -self._keep]
        log.info("simulated %s text %s", text.channel, text.message_id)
        return SendResult(provider=self.name, external_id=f"SIMTEXT{text.message_id}")

    async def call_into_room(self, call: RoomCall) -> SendResult:
        self.room_calls.append(call)
        log.info("simulated %s call %s into room %s", call.leg, call.call_id, call.room)
        return SendResult(provider=self.name, external_id=f"SIMROOM{call.call_id}")


if TYPE_CHECKING:
    from providers.base import MessageSender, RoomDialer, TextSender

    _check: type[MessageSender] = SimulatedPhones
    _check_rooms: type[RoomDialer] = SimulatedPhones
    _check_texts: type[TextSender] = SimulatedPhones
