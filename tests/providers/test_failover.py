"""The failover sender and its circuit breakers, on a fake clock: which provider a page goes to,
when the breaker opens and closes again, and that no page is sent twice by the failover itself."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import pytest

from providers.base import (
    Channel,
    DeliveryState,
    DeliveryUpdate,
    OutboundPage,
    OutboundText,
    OutcomeUnknownError,
    PermanentProviderError,
    ProviderError,
    RoomCall,
    SendResult,
    SentList,
    SentQuery,
    SentRecord,
    TemporaryProviderError,
)
from providers.failover import BreakerPolicy, FailoverSender
from routing.clock import FakeClock

ANNA = "+31611111111"
POLICY = BreakerPolicy(
    failures_in_a_row=3,
    failure_rate=0.5,
    window_seconds=60,
    min_outcomes=6,
    cooldown_seconds=60,
    receipt_seconds=30,
)


@dataclass
class Stub:
    """A provider that answers from a script (an exception to raise, or None to accept)."""

    name: str
    channels: frozenset[Channel] = frozenset({Channel.VOICE})
    script: list[Exception | None] = field(default_factory=list)
    sent: list[int] = field(default_factory=list)
    gate: asyncio.Event | None = None
    cancelled: list[str] = field(default_factory=list)
    rooms: list[str] = field(default_factory=list)
    known: dict[str, DeliveryUpdate] = field(default_factory=dict)
    pages: dict[int, DeliveryUpdate] = field(default_factory=dict)

    async def send(self, page: OutboundPage) -> SendResult:
        if self.gate is not None:
            await self.gate.wait()
        outcome = self.script.pop(0) if self.script else None
        if outcome is not None:
            raise outcome
        self.sent.append(page.page_id)
        external_id = f"{self.name}-{page.page_id}"
        self.known[external_id] = DeliveryUpdate(external_id, DeliveryState.SENT)
        self.pages[page.page_id] = self.known[external_id]
        return SendResult(self.name, external_id)

    async def send_text(self, text: OutboundText) -> SendResult:
        self.sent.append(-text.message_id)
        return SendResult(self.name, f"{self.name}-text-{text.message_id}")

    async def status(self, page_id: int, external_id: str | None) -> DeliveryUpdate | None:
        return self.known.get(external_id or "") or self.pages.get(page_id)

    async def cancel(self, external_id: str) -> None:
        if external_id not in self.known:
            raise PermanentProviderError(f"{self.name}: no such call")
        self.cancelled.append(external_id)

    async def call_into_room(self, call: RoomCall) -> SendResult:
        self.rooms.append(call.room)
        return SendResult(self.name, f"{self.name}-room-{call.call_id}")


@dataclass
class Lister(Stub):
    """A provider that can also list what it placed to a number (`SentFinder`)."""

    listed_within: float = 0.0
    listed: list[SentRecord] = field(default_factory=list)
    complete: bool = True
    broken: bool = False

    async def sent_to(self, query: SentQuery) -> SentList:
        del query
        if self.broken:
            raise OutcomeUnknownError(f"{self.name}: 500")
        return SentList(tuple(self.listed), self.complete)


@dataclass
class Pair:
    twilio: Stub
    vonage: Stub
    failover: FailoverSender
    clock: FakeClock
    next_id: int = 0

    async def page(self, *, receipt: bool = True) -> SendResult:
        """Send a page; its provider's status webhook follows at once unless `receipt=False`."""
        self.next_id += 1
        result = await self.failover.send(
            OutboundPage(self.next_id, Channel.VOICE, ANNA, "Anna", "nl", "K7Q4M2", "fraud", "SOS")
        )
        if receipt:
            self.failover.receipt(result.provider, self.next_id)
        return result

    async def failing_pages(self, error: type[Exception], count: int) -> None:
        self.twilio.script += [error("down") for _ in range(count)]
        for _ in range(count):
            with pytest.raises(error):
                await self.page()


@pytest.fixture
def pair() -> Pair:
    clock = FakeClock()
    twilio, vonage = Stub("twilio"), Stub("vonage")
    return Pair(twilio, vonage, FailoverSender(twilio, vonage, clock=clock, policy=POLICY), clock)


async def test_the_primary_carries_the_pages_while_it_is_healthy(pair: Pair) -> None:
    result = await pair.page()
    assert result.provider == "twilio"  # so `pages.provider` names who really sent it
    assert (pair.twilio.sent, pair.vonage.sent) == ([1], [])
    assert pair.failover.state() == {"twilio": "closed", "vonage": "closed"}


async def test_unknown_outcomes_in_a_row_open_the_breaker_without_resending_them(
    pair: Pair, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="providers.failover")
    await pair.failing_pages(OutcomeUnknownError, 3)
    assert pair.vonage.sent == []  # the reconciler owns a page that may exist

    result = await pair.page()

    assert result.provider == "vonage"
    assert pair.failover.state() == {"twilio": "open", "vonage": "closed"}
    assert "twilio voice: breaker closed -> open (OutcomeUnknownError)" in caplog.text
    assert "31611111111" not in caplog.text  # no phone numbers in logs


async def test_a_temporary_error_sends_the_same_page_through_the_secondary_at_once(
    pair: Pair,
) -> None:
    pair.twilio.script.append(TemporaryProviderError("connect timeout"))
    result = await pair.page()
    assert result.provider == "vonage"
    assert pair.vonage.sent == [1]
    assert pair.failover.state()["twilio"] == "closed"  # one failure is not an outage


async def test_a_bad_number_is_not_a_provider_failure(pair: Pair) -> None:
    await pair.failing_pages(PermanentProviderError, 5)
    assert pair.vonage.sent == []  # the chain moves on; no other provider is tried
    assert pair.failover.state()["twilio"] == "closed"


async def test_a_high_error_rate_in_the_window_opens_the_breaker(pair: Pair) -> None:
    for _ in range(2):
        await pair.page()
        await pair.failing_pages(OutcomeUnknownError, 1)
    assert pair.failover.state()["twilio"] == "closed"  # 2 of 4: too few outcomes yet
    await pair.page()
    await pair.failing_pages(OutcomeUnknownError, 1)  # 3 of 6 failed
    assert pair.failover.state()["twilio"] == "open"


async def test_failures_older_than_the_window_do_not_count(pair: Pair) -> None:
    for _ in range(3):
        await pair.page()
        await pair.failing_pages(OutcomeUnknownError, 1)
        pair.clock.advance(61)
    assert pair.failover.state()["twilio"] == "closed"


async def test_after_the_cooldown_one_trial_goes_to_the_primary_and_switches_back(
    pair: Pair,
) -> None:
    await pair.failing_pages(OutcomeUnknownError, 3)
    pair.clock.advance(59)
    assert (await pair.page()).provider == "vonage"

    pair.clock.advance(1)
    assert (await pair.page()).provider == "twilio"  # the trial went through
    assert pair.failover.state()["twilio"] == "closed"
    assert (await pair.page()).provider == "twilio"


async def test_a_failed_trial_keeps_the_secondary_on_for_another_cooldown(pair: Pair) -> None:
    await pair.failing_pages(OutcomeUnknownError, 3)
    pair.clock.advance(60)
    pair.twilio.script.append(TemporaryProviderError("still down"))
    assert (await pair.page()).provider == "vonage"  # the trial failed: not processed, moved on
    assert pair.failover.state()["twilio"] == "open"
    pair.clock.advance(30)
    assert (await pair.page()).provider == "vonage"
    pair.clock.advance(30)
    assert (await pair.page()).provider == "twilio"


async def test_only_one_trial_is_in_flight_at_a_time(pair: Pair) -> None:
    await pair.failing_pages(OutcomeUnknownError, 3)
    pair.clock.advance(60)
    pair.twilio.gate = asyncio.Event()
    trial = asyncio.create_task(pair.page())
    await asyncio.sleep(0)
    assert (await pair.page()).provider == "vonage"  # the primary is being tried already
    pair.twilio.gate.set()
    assert (await trial).provider == "twilio"


async def test_a_send_past_its_deadline_counts_as_a_failure(pair: Pair) -> None:
    pair.twilio.gate = asyncio.Event()  # Twilio never answers
    for _ in range(3):
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(pair.page(), 0.01)
    assert pair.failover.state()["twilio"] == "open"


async def test_pages_without_a_status_webhook_count_as_failures(pair: Pair) -> None:
    for _ in range(3):
        await pair.page(receipt=False)
    pair.failover.receipt("twilio", 2)  # only page 2's status webhook came
    pair.clock.advance(30)
    assert pair.failover.state()["twilio"] == "closed"  # 2 missing: below 3 in a row

    await pair.page(receipt=False)
    pair.clock.advance(29)
    assert pair.failover.state()["twilio"] == "closed"  # not late yet
    pair.clock.advance(1)
    assert pair.failover.state()["twilio"] == "open"
    assert (await pair.page()).provider == "vonage"


async def test_a_receipt_from_the_other_provider_does_not_count(pair: Pair) -> None:
    for _ in range(3):
        await pair.page(receipt=False)
        pair.failover.receipt("vonage", pair.next_id)
    pair.clock.advance(31)
    assert pair.failover.state()["twilio"] == "open"


async def test_with_every_breaker_open_the_primary_is_tried_anyway(pair: Pair) -> None:
    await pair.failing_pages(OutcomeUnknownError, 3)
    pair.vonage.script += [OutcomeUnknownError("down") for _ in range(3)]
    for _ in range(3):
        with pytest.raises(OutcomeUnknownError):
            await pair.page()
    assert pair.failover.state() == {"twilio": "open", "vonage": "open"}
    assert (await pair.page()).provider == "twilio"


async def test_status_and_cancel_go_to_the_provider_that_sent_the_page(pair: Pair) -> None:
    pair.twilio.script.append(TemporaryProviderError("busy"))
    sent = await pair.page()
    assert sent.external_id == "vonage-1"

    found = await pair.failover.status(1, None)  # no id yet: asked by page
    assert found is not None
    assert found.external_id == "vonage-1"
    await pair.failover.cancel("vonage-1")
    assert (pair.twilio.cancelled, pair.vonage.cancelled) == ([], ["vonage-1"])


async def test_after_a_restart_each_provider_is_asked_in_turn(pair: Pair) -> None:
    pair.vonage.known["vonage-9"] = DeliveryUpdate("vonage-9", DeliveryState.DELIVERED)
    fresh = FailoverSender(pair.twilio, pair.vonage, clock=pair.clock, policy=POLICY)

    found = await fresh.status(9, "vonage-9")
    assert found is not None
    assert found.state == DeliveryState.DELIVERED
    await fresh.cancel("vonage-9")  # Twilio does not know it; Vonage ends it
    assert pair.vonage.cancelled == ["vonage-9"]
    assert await fresh.status(10, "nobody-has-it") is None


async def test_an_unknown_outcome_is_reconciled_with_the_provider_that_was_tried(
    pair: Pair,
) -> None:
    await pair.failing_pages(OutcomeUnknownError, 1)
    pair.vonage.known["stray"] = DeliveryUpdate("stray", DeliveryState.SENT)
    assert await pair.failover.status(1, None) is None  # Twilio's answer, not Vonage's


async def test_a_page_without_an_id_is_looked_up_where_it_was_tried(pair: Pair) -> None:
    twilio = Lister("twilio", listed=[SentRecord("CA1", None)], listed_within=300)
    vonage = Lister("vonage", listed=[SentRecord("stray", None)], listed_within=60)
    failover = FailoverSender(twilio, vonage, clock=pair.clock, policy=POLICY)
    twilio.script.append(OutcomeUnknownError("timeout"))
    with pytest.raises(OutcomeUnknownError):
        await failover.send(
            OutboundPage(1, Channel.VOICE, ANNA, "Anna", "nl", "K7Q4M2", "fraud", "SOS")
        )
    query = SentQuery(1, ANNA, pair.clock.now())

    found = await failover.sent_to(query)

    assert [r.external_id for r in found.records] == ["CA1"]  # Twilio's answer, not Vonage's
    assert found.complete
    assert failover.listed_within == 300  # the slowest to list

    twilio.broken = True
    with pytest.raises(ProviderError, match="500"):
        await failover.sent_to(query)


async def test_after_a_restart_every_provider_lists_and_one_that_cannot_leaves_it_open(
    pair: Pair,
) -> None:
    twilio = Lister("twilio", listed=[SentRecord("CA1", None)])
    both = FailoverSender(
        twilio, Lister("vonage", listed=[SentRecord("V1", None)]), clock=pair.clock
    )
    query = SentQuery(9, ANNA, pair.clock.now())

    found = await both.sent_to(query)
    assert ([r.external_id for r in found.records], found.complete) == (["CA1", "V1"], True)

    # Vonage cannot list (`pair.vonage` is no `SentFinder`): never "absent", still "found".
    half = FailoverSender(twilio, pair.vonage, clock=pair.clock)
    found = await half.sent_to(query)
    assert ([r.external_id for r in found.records], found.complete) == (["CA1"], False)
    twilio.broken = True
    with pytest.raises(ProviderError, match="500"):
        await half.sent_to(query)


async def test_bridge_calls_join_the_room_where_it_lives(pair: Pair) -> None:
    pair.failover.room_is_on("sos-R1", "vonage")  # the acceptor pressed 1 on a Vonage call
    result = await pair.failover.call_into_room(RoomCall(1, "+31612345678", "sos-R1", "customer"))
    assert result.provider == "vonage"
    assert pair.twilio.rooms == []

    await pair.failover.call_into_room(RoomCall(2, ANNA, "sos-R2", "staff"))
    await pair.failover.call_into_room(RoomCall(3, "+31612345678", "sos-R2", "customer"))
    assert pair.twilio.rooms == ["sos-R2", "sos-R2"]  # both legs in the same room


async def test_texts_fail_over_too(pair: Pair) -> None:
    await pair.failing_pages(OutcomeUnknownError, 3)
    result = await pair.failover.send_text(OutboundText(5, Channel.VOICE, ANNA, "1 2 3", "nl"))
    assert result.provider == "vonage"
