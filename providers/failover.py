"""Failover between two providers of a channel (Twilio, then Vonage), with a circuit breaker each.

    FailoverSender(primary, secondary)        one per channel; registered like any sender
    └── Breaker per provider                  closed → open → half-open → closed

A breaker opens after `failures_in_a_row` failed sends, or when at least `failure_rate` of the
sends of the last `window_seconds` failed (given `min_outcomes` of them). A failure is what says
the provider is in trouble: a temporary error (429, no connection), an unknown outcome (5xx, a
timeout after sending), the send deadline passing, and a page sent without any status webhook
about it within `receipt_seconds` (the webhooks call `receipt`). A page the provider accepted
counts as a success when its first status webhook arrives. A permanent error (a bad number) is
an answer, so it counts as a success: the provider is up, the number is wrong.

While the primary's breaker is open the secondary carries the traffic. After `cooldown_seconds`
one trial send goes to the primary again (half-open); if it goes through, the breaker closes and
traffic switches back; if not, it stays open for another cool-down.

Rules that keep a page from being lost or doubled:
- A temporary error means "not processed", so the same send goes straight to the other provider.
- An unknown outcome is raised as it is: the page may exist, and the reconciler (which asks the
  provider that took it) decides, never a blind second send from here.
- Status checks, look-ups of a page without an external id, and cancels go to the provider that
  actually took the page (remembered per page and per external id; after a restart, each
  provider is asked in turn). `SendResult.provider`, and so `pages.provider`, names it too.
- Bridge calls for one room go to the provider hosting that room (`room_is_on`).

State is per process, in memory, timed by the injected clock. Why not pybreaker, aiobreaker or
purgatory: they read the wall clock themselves (scenario tests drive a fake one), count only
consecutive failures of a call they wrap, and answer by raising from that call; we need to choose
*which* provider to call, an error rate over a window, and a failure that arrives later from a
webhook (the missing receipt). That is the small class below.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol, TypeVar

from providers.base import (
    Canceller,
    DeliveryUpdate,
    MessageSender,
    OutboundPage,
    OutboundText,
    OutcomeUnknownError,
    PermanentProviderError,
    ProviderError,
    RoomCall,
    RoomDialer,
    SendResult,
    SentFinder,
    SentList,
    SentQuery,
    SentRecord,
    StatusChecker,
    TemporaryProviderError,
    TextSender,
)

log = logging.getLogger(__name__)

K = TypeVar("K")
V = TypeVar("V")


class Clock(Protocol):
    def now(self) -> datetime: ...


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    failures_in_a_row: int = 3
    failure_rate: float = 0.5
    window_seconds: float = 60
    min_outcomes: int = 6
    cooldown_seconds: float = 60
    receipt_seconds: float = 90


class Breaker:
    """One provider's health on one channel, as this process has seen it."""

    def __init__(self, label: str, policy: BreakerPolicy, clock: Clock) -> None:
        self.label = label
        self.policy = policy
        self.clock = clock
        self.state = BreakerState.CLOSED
        self._in_a_row = 0
        self._recent: deque[tuple[datetime, bool]] = deque()
        self._opened_at = clock.now()
        self._trial = False

    def allows(self) -> bool:
        """May a send go to this provider now? When open: not until the cool-down has passed,
        then one trial send at a time (this call claims it)."""
        if self.state is BreakerState.OPEN:
            cooldown = timedelta(seconds=self.policy.cooldown_seconds)
            if self.clock.now() - self._opened_at < cooldown:
                return False
            self._move(BreakerState.HALF_OPEN, "cool-down over, one trial send")
        if self.state is BreakerState.HALF_OPEN:
            if self._trial:
                return False
            self._trial = True
        return True

    def succeeded(self, *, counted: bool = True) -> None:
        """A send went through, which closes the breaker. `counted=False`: the send is counted
        later, when its status webhook arrives (`heard`) or does not (`failed`)."""
        if counted:
            self._record(ok=True)
        self._trial = False
        if self.state is not BreakerState.CLOSED:
            self._in_a_row, self._recent = 0, deque()
            self._move(BreakerState.CLOSED, "a send went through")

    def heard(self) -> None:
        """A status webhook about a page arrived: a success, which changes no state."""
        self._record(ok=True)

    def failed(self, why: str) -> None:
        self._record(ok=False)
        if self.state is BreakerState.HALF_OPEN:
            self._open(f"the trial send failed: {why}")
        elif self.state is BreakerState.CLOSED and self._tripped():
            self._open(why)

    def _record(self, *, ok: bool) -> None:
        now = self.clock.now()
        self._trial = False
        self._in_a_row = 0 if ok else self._in_a_row + 1
        self._recent.append((now, ok))
        horizon = now - timedelta(seconds=self.policy.window_seconds)
        while self._recent and self._recent[0][0] < horizon:
            self._recent.popleft()

    def _tripped(self) -> bool:
        if self._in_a_row >= self.policy.failures_in_a_row:
            return True
        failures = sum(1 for _, ok in self._recent if not ok)
        return len(
            self._recent
        ) >= self.policy.min_outcomes and failures >= self.policy.failure_rate * len(self._recent)

    def _open(self, why: str) -> None:
        self._opened_at = self.clock.now()
        self._move(BreakerState.OPEN, why)

    def _move(self, state: BreakerState, why: str) -> None:
        level = logging.WARNING if state is BreakerState.OPEN else logging.INFO
        log.log(level, "%s: breaker %s -> %s (%s)", self.label, self.state, state, why)
        self.state = state


SendCall = Callable[[MessageSender], Awaitable[SendResult]]


class FailoverSender:
    """A sender for the channels `primary` and `secondary` share, failing over between them."""

    def __init__(
        self,
        primary: MessageSender,
        secondary: MessageSender,
        *,
        clock: Clock,
        policy: BreakerPolicy | None = None,
        memory: int = 10_000,
    ) -> None:
        assert primary.name != secondary.name, "two different providers"
        self.providers = (primary, secondary)
        self.channels = primary.channels & secondary.channels
        self.name = f"{primary.name}+{secondary.name}"
        self.clock = clock
        self.policy = policy or BreakerPolicy()
        where = "/".join(sorted(self.channels))
        self.breakers = {
            p.name: Breaker(f"{p.name} {where}", self.policy, clock) for p in self.providers
        }
        self._memory = memory
        self._by_page: OrderedDict[int, MessageSender] = OrderedDict()
        self._by_external: OrderedDict[str, MessageSender] = OrderedDict()
        self._rooms: OrderedDict[str, MessageSender] = OrderedDict()
        self._awaiting: dict[int, tuple[str, datetime]] = {}  # page id → (provider, receipt due)
        finders = [p for p in self.providers if isinstance(p, SentFinder)]
        self.listed_within = max((p.listed_within for p in finders), default=0.0)

    # --- sending ---------------------------------------------------------------------------------

    async def send(self, page: OutboundPage) -> SendResult:
        _, result = await self._send(lambda p: p.send(page), page_id=page.page_id)
        return result

    async def send_text(self, text: OutboundText) -> SendResult:
        _, result = await self._send(lambda p: _texts(p).send_text(text))
        return result

    async def call_into_room(self, call: RoomCall) -> SendResult:
        """A bridge call joins the room on the provider that hosts it (a staff member who
        pressed 1 there, or the first leg we dialled); a new room goes where pages go."""
        host = self._rooms.get(call.room)
        if host is not None:
            return await self._try(host, lambda p: _dialer(p).call_into_room(call))
        provider, result = await self._send(lambda p: _dialer(p).call_into_room(call))
        _remember(self._rooms, call.room, provider, self._memory)
        return result

    async def _send(
        self, call: SendCall, *, page_id: int | None = None
    ) -> tuple[MessageSender, SendResult]:
        """Try the providers whose breaker lets a send through, primary first; a temporary error
        moves on to the next one. With every breaker open, the primary is tried anyway: a page
        is never dropped for want of a healthy provider."""
        self._expire_receipts()
        not_processed: TemporaryProviderError | None = None
        for provider in self.providers:
            if not self.breakers[provider.name].allows():
                continue
            try:
                return provider, await self._try(provider, call, page_id=page_id)
            except TemporaryProviderError as exc:
                not_processed = exc
        if not_processed is not None:
            raise not_processed
        primary = self.providers[0]
        return primary, await self._try(primary, call, page_id=page_id)

    async def _try(
        self, provider: MessageSender, call: SendCall, *, page_id: int | None = None
    ) -> SendResult:
        breaker = self.breakers[provider.name]
        if page_id is not None:
            _remember(self._by_page, page_id, provider, self._memory)
        try:
            result = await call(provider)
        except PermanentProviderError:
            breaker.succeeded()  # it answered: a bad number says nothing about its health
            raise
        except BaseException as exc:  # temporary, unknown, the send deadline, a bug
            breaker.failed(_why(exc))
            raise
        # A page counts once its status webhook comes, or fails to come, in time.
        breaker.succeeded(counted=page_id is None)
        if result.external_id:
            _remember(self._by_external, result.external_id, provider, self._memory)
        if page_id is not None:
            due = self.clock.now() + timedelta(seconds=self.policy.receipt_seconds)
            self._awaiting[page_id] = (provider.name, due)
        return result

    # --- later words about a page ------------------------------------------------------------

    def receipt(self, provider: str, page_id: int) -> None:
        """A status webhook about `page_id` came from `provider`: its receipts are flowing."""
        awaited = self._awaiting.get(page_id)
        if awaited is not None and awaited[0] == provider:
            del self._awaiting[page_id]
            self.breakers[provider].heard()

    def room_is_on(self, room: str, provider: str) -> None:
        """`room` lives on `provider` (someone joined it there): bridge calls go there too."""
        for candidate in self.providers:
            if candidate.name == provider:
                _remember(self._rooms, room, candidate, self._memory)

    def _expire_receipts(self) -> None:
        now = self.clock.now()
        overdue = [page_id for page_id, (_, due) in self._awaiting.items() if due <= now]
        for page_id in overdue:
            provider, _ = self._awaiting.pop(page_id)
            seconds = self.policy.receipt_seconds
            self.breakers[provider].failed(f"no status webhook within {seconds:g} s")

    async def status(self, page_id: int, external_id: str | None) -> DeliveryUpdate | None:
        """Asks the provider that took the page. Not known (a restart): each provider in turn;
        the page is absent only when none has it and every one could tell. A provider that
        cannot look pages up (Vonage's SMS) makes this "no answer yet": the reconciler asks
        again until it gives up, and the page's status webhook may settle it meanwhile."""
        known = self._by_page.get(page_id) or self._by_external.get(external_id or "")
        problem: ProviderError | None = None
        for provider in [known] if known else self.providers:
            if not isinstance(provider, StatusChecker):
                problem = ProviderError(
                    f"{provider.name} cannot look a page up; waiting for its status webhook"
                )
                continue
            try:
                found = await provider.status(page_id, external_id)
            except ProviderError as exc:
                problem = exc
                continue
            if found is not None:
                _remember(self._by_page, page_id, provider, self._memory)
                _remember(self._by_external, found.external_id, provider, self._memory)
                return found
        if problem is not None:
            raise problem
        return None

    async def sent_to(self, query: SentQuery) -> SentList:
        """Asks the provider that took the page (not known: each in turn, their answers put
        together). The list is complete only when every provider asked answered completely: one
        that cannot list its sends, or failed to, leaves the page possibly sent."""
        known = self._by_page.get(query.page_id)
        records: list[SentRecord] = []
        complete, answered = True, False
        problem: ProviderError = ProviderError(
            "no provider can list its sends; waiting for the status webhook"
        )
        for provider in [known] if known else self.providers:
            if not isinstance(provider, SentFinder):
                complete = False
                continue
            try:
                found = await provider.sent_to(query)
            except ProviderError as exc:
                problem, complete = exc, False
                continue
            answered = True
            records += found.records
            complete = complete and found.complete
        if not answered:
            raise problem
        return SentList(tuple(records), complete)

    async def cancel(self, external_id: str) -> None:
        """Ends the call on the provider that placed it (not known: each in turn)."""
        known = self._by_external.get(external_id)
        problem: ProviderError | None = None
        for provider in [known] if known else self.providers:
            if not isinstance(provider, Canceller):
                continue
            try:
                await provider.cancel(external_id)
            except ProviderError as exc:
                problem = exc
                continue
            return
        if problem is not None:
            raise problem

    def state(self) -> dict[str, str]:
        """Each provider's breaker ("closed", "open", "half_open"), primary first: for /readyz
        or a metric."""
        self._expire_receipts()
        return {p.name: str(self.breakers[p.name].state) for p in self.providers}


def _texts(provider: MessageSender) -> TextSender:
    if not isinstance(provider, TextSender):
        raise PermanentProviderError(f"{provider.name} does not send texts")
    return provider


def _dialer(provider: MessageSender) -> RoomDialer:
    if not isinstance(provider, RoomDialer):
        raise PermanentProviderError(f"{provider.name} cannot bridge calls")
    return provider


def _why(exc: BaseException) -> str:
    """A failure for the log: its kind and code, never its text (which may hold a number)."""
    if isinstance(exc, TemporaryProviderError | OutcomeUnknownError):
        return type(exc).__name__ + (f" {exc.code}" if exc.code else "")
    if isinstance(exc, TimeoutError | asyncio.CancelledError):
        return "no answer before the send deadline"
    return type(exc).__name__


def _remember(memory: OrderedDict[K, V], key: K, value: V, limit: int) -> None:
    memory[key] = value
    memory.move_to_end(key)
    while len(memory) > limit:
        memory.popitem(last=False)


if TYPE_CHECKING:
    _check: type[MessageSender] = FailoverSender
    _check_status: type[StatusChecker] = FailoverSender
    _check_finder: type[SentFinder] = FailoverSender
    _check_cancel: type[Canceller] = FailoverSender
    _check_rooms: type[RoomDialer] = FailoverSender
    _check_texts: type[TextSender] = FailoverSender
