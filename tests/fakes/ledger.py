"""A fake provider that keeps a ledger of every page request it got, for property tests.

The scripted fake (`providers/fake.py`) answers what a test expects; this one remembers what the
provider itself would know, so a test can check afterwards that no person got the same page twice
and that nothing went out after an acknowledgement:

- every page request is one `Request` in `ledger`, in order, with the clock time, the outcome,
  and the page ids the message covered (a bundled SMS covers its riders too, read by `covers`
  while the claim is still on the rows);
- `upcoming` is what the next page request meets (then it is back to `ACCEPT`): a rate limit, a
  rejection, a request lost on the way (the provider never got it) or an answer lost on the way
  back (the provider took the page, but the sender cannot know);
- `status()` answers the reconciler truthfully from the ledger, unless `status_down` is set (the
  provider's status API fails, so an unknown outcome stays unknown);
- `meanwhile`, when set, runs once while the provider is still handling the next page request:
  what happens elsewhere during a send (a colleague accepts the report at the console, say).

Texts that are not pages and voice-bridge calls are always taken and only counted.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from providers.base import (
    Channel,
    DeliveryState,
    DeliveryUpdate,
    OutboundPage,
    OutboundText,
    OutcomeUnknownError,
    PermanentProviderError,
    RoomCall,
    SendResult,
    TemporaryProviderError,
)
from routing.clock import Clock

if TYPE_CHECKING:
    from datetime import datetime


class Fault(StrEnum):
    """What the provider does with a page request."""

    ACCEPT = "accept"  # taken: "sent"
    RATE_LIMITED = "rate_limited"  # 429: not processed, safe to retry
    REJECTED = "rejected"  # a permanent 4xx (invalid number): not sent
    REQUEST_LOST = "request_lost"  # timeout before the provider got it: unknown, not taken
    ANSWER_LOST = "answer_lost"  # 5xx or timeout after the provider took it: unknown, taken

    @property
    def taken(self) -> bool:
        return self in (Fault.ACCEPT, Fault.ANSWER_LOST)


@dataclass(frozen=True, slots=True)
class Request:
    """One page request as the provider saw it. `covers`: the carrier's page id first, then
    the pages that rode along in a bundled SMS."""

    at: datetime
    page_id: int
    channel: Channel
    staff_name: str
    covers: tuple[int, ...]
    fault: Fault
    external_id: str | None

    @property
    def taken(self) -> bool:
        return self.fault.taken


async def _alone(page_id: int) -> tuple[int, ...]:
    return (page_id,)


class LedgerPhones:
    name = "ledger"
    channels = frozenset({Channel.VOICE, Channel.SMS, Channel.CHAT})

    def __init__(
        self, clock: Clock, covers: Callable[[int], Awaitable[tuple[int, ...]]] = _alone
    ) -> None:
        self.clock = clock
        self.covers = covers
        self.ledger: list[Request] = []
        self.upcoming = Fault.ACCEPT
        self.status_down = False
        self.meanwhile: Callable[[OutboundPage], Awaitable[None]] | None = None
        self.texts: list[OutboundText] = []
        self.room_calls: list[RoomCall] = []

    @property
    def taken(self) -> list[Request]:
        return [r for r in self.ledger if r.taken]

    async def send(self, page: OutboundPage) -> SendResult:
        fault, self.upcoming = self.upcoming, Fault.ACCEPT
        external_id = f"LEDGER{len(self.ledger) + 1}" if fault.taken else None
        self.ledger.append(
            Request(
                at=self.clock.now(),
                page_id=page.page_id,
                channel=page.channel,
                staff_name=page.staff_name,
                covers=await self.covers(page.page_id),
                fault=fault,
                external_id=external_id,
            )
        )
        if self.meanwhile is not None:
            meanwhile, self.meanwhile = self.meanwhile, None
            await meanwhile(page)
        if fault is Fault.RATE_LIMITED:
            raise TemporaryProviderError("429 too many requests", code="20429")
        if fault is Fault.REJECTED:
            raise PermanentProviderError("invalid number", code="21211")
        if fault in (Fault.REQUEST_LOST, Fault.ANSWER_LOST):
            raise OutcomeUnknownError("no answer in time")
        return SendResult(self.name, external_id)

    async def status(self, page_id: int, external_id: str | None) -> DeliveryUpdate | None:
        del external_id
        if self.status_down:
            raise TemporaryProviderError("status lookup failed")
        for request in reversed(self.ledger):
            if request.page_id == page_id and request.external_id is not None:
                return DeliveryUpdate(request.external_id, DeliveryState.SENT)
        return None

    async def send_text(self, text: OutboundText) -> SendResult:
        self.texts.append(text)
        return SendResult(self.name, f"LEDGERTEXT{len(self.texts)}")

    async def call_into_room(self, call: RoomCall) -> SendResult:
        self.room_calls.append(call)
        return SendResult(self.name, f"LEDGERROOM{call.call_id}")


if TYPE_CHECKING:
    from providers.base import MessageSender, RoomDialer, StatusChecker, TextSender

    _check: type[MessageSender] = LedgerPhones
    _check_status: type[StatusChecker] = LedgerPhones
    _check_texts: type[TextSender] = LedgerPhones
    _check_rooms: type[RoomDialer] = LedgerPhones
