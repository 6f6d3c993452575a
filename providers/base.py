"""The provider port: what the engine hands an adapter, and what an adapter may answer.

    ProviderError
    ├── TemporaryProviderError   not processed (rate limited, queue full): safe to retry
    ├── PermanentProviderError   rejected (invalid number, opted out): retrying cannot help
    └── OutcomeUnknownError      timeout or 5xx after the request left: the page may exist

Adapters receive their configuration in `__init__`, never read the environment, and return or raise
only these types, so no vendor payload crosses into the domain.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable

log = logging.getLogger(__name__)


class Channel(StrEnum):
    VOICE = "voice"
    SMS = "sms"
    CHAT = "chat"


class DeliveryState(StrEnum):
    """Outcome of a page as the provider sees it. Only `ANSWERED` with a keypress is a human."""

    SENT = "sent"
    DELIVERED = "delivered"
    ANSWERED = "answered"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class OutboundPage:
    """One page to one staff member on one channel. Carries no customer data by construction."""

    page_id: int
    channel: Channel
    to: str
    staff_name: str
    language: str
    reference: str
    category: str
    text: str


@dataclass(frozen=True, slots=True)
class OutboundText:
    """One text that is not a page: a customer's receipt or "Anna calls you now" by SMS, a staff
    member's verification code by SMS or call (`body` is then what the call says)."""

    message_id: int
    channel: Channel
    to: str
    body: str
    language: str


@dataclass(frozen=True, slots=True)
class SendResult:
    provider: str
    external_id: str | None
    state: DeliveryState = DeliveryState.SENT
    detail: str = ""


@dataclass(frozen=True, slots=True)
class DeliveryUpdate:
    """A later word from the provider about a page (a status callback, a reconcile answer)."""

    external_id: str
    state: DeliveryState
    detail: str = ""


class ProviderError(Exception):
    def __init__(self, detail: str, *, code: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code


class TemporaryProviderError(ProviderError):
    def __init__(
        self, detail: str, *, code: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(detail, code=code)
        self.retry_after = retry_after


class PermanentProviderError(ProviderError):
    pass


class OutcomeUnknownError(ProviderError):
    pass


@runtime_checkable
class MessageSender(Protocol):
    """Required capability: send one page on one of `channels`."""

    name: str
    channels: frozenset[Channel]

    async def send(self, page: OutboundPage) -> SendResult: ...


@runtime_checkable
class StatusChecker(Protocol):
    """Optional capability, used to reconcile a page whose outcome is unknown.

    Returns `None` when the provider has no record of the page: it never left.
    """

    async def status(self, page_id: int, external_id: str | None) -> DeliveryUpdate | None: ...


@dataclass(frozen=True, slots=True)
class SentQuery:
    """A page the provider may have taken without our learning its id (the send timed out, or
    its worker died before recording the answer): who it went to, and the earliest moment the
    provider can have taken it."""

    page_id: int
    to: str
    since: datetime


@dataclass(frozen=True, slots=True)
class SentRecord:
    """One call or message the provider placed from our number to `SentQuery.to`."""

    external_id: str
    created_at: datetime | None  # when the provider took the request (None: it does not say)
    body: str | None = None  # what a text said, where the provider still shows it


@dataclass(frozen=True, slots=True)
class SentList:
    """What the provider placed to one number since a moment. `complete` is False when it holds
    more than it answered with (a further page of results): a send missing from `records` may
    then still exist."""

    records: tuple[SentRecord, ...]
    complete: bool


@runtime_checkable
class SentFinder(Protocol):
    """Optional capability, used to reconcile a page whose id we never learned: list what the
    provider placed from our number to `query.to` since `query.since`. Raises `ProviderError`
    when it cannot tell.

    `listed_within`: seconds after the provider took a send within which the list is sure to
    show it (a text waiting in the provider's queue may show only once it leaves it); only
    after that may a send missing from the list be taken as never made.
    """

    listed_within: float

    async def sent_to(self, query: SentQuery) -> SentList: ...


@runtime_checkable
class Canceller(Protocol):
    """Optional capability: end a page still in progress (hang up a ringing call)."""

    async def cancel(self, external_id: str) -> None: ...


@dataclass(frozen=True, slots=True)
class RoomCall:
    """Call one person into a report's conference room (the voice bridge)."""

    call_id: int
    to: str
    room: str
    leg: str  # "customer" or "staff"


@runtime_checkable
class RoomDialer(Protocol):
    """Optional capability: place a call that joins a conference room when answered."""

    async def call_into_room(self, call: RoomCall) -> SendResult: ...


@runtime_checkable
class TextSender(Protocol):
    """Optional capability: send a text that is not a page (`OutboundText`) on `channels`."""

    name: str
    channels: frozenset[Channel]

    async def send_text(self, text: OutboundText) -> SendResult: ...


class Screened(Protocol):
    @property
    def text(self) -> str: ...

    @property
    def found(self) -> tuple[str, ...]: ...


class ContentGuard(Protocol):
    """Removes what no outbound text may carry (IBANs, card numbers, amounts, balances) and says
    which kinds it found. The domain's guard (`routing.guard.scrub`) is handed to adapters by
    `app/`, so they stay free of domain imports."""

    def __call__(self, text: str, /) -> Screened: ...


def screen(guard: ContentGuard | None, text: str, *, where: str) -> str:
    """An adapter's last line of defence: the safe version of `text`, with a warning in the log
    when the guard removed something the domain should have caught (no database here)."""
    if guard is None:
        return text
    result = guard(text)
    if result.found:
        log.warning(
            "content guard removed %s from %s at the adapter", ", ".join(result.found), where
        )
    return result.text
