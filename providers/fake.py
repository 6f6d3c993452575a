"""A scripted fake provider for tests and local experiments.

Each send takes the next scripted outcome for its channel (default: sent). Sends are recorded so
tests can expect exactly the pages a user would notice and fail on any other (`assert_no_more`).
Texts that are not pages (a customer's receipt, a verification code) are scripted and recorded
apart from pages (`script_texts`, `texts`, `expect_texts`); `assert_no_more` fails on either.
"""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class Outcome:
    """One scripted answer: a state to return, or an error to raise."""

    state: DeliveryState = DeliveryState.SENT
    error: type[Exception] | None = None
    detail: str = ""


SENT = Outcome()
DELIVERED = Outcome(DeliveryState.DELIVERED)
NO_ANSWER = Outcome(DeliveryState.FAILED, detail="no-answer")
FAILS_TEMPORARILY = Outcome(error=TemporaryProviderError, detail="rate limited")
FAILS_PERMANENTLY = Outcome(error=PermanentProviderError, detail="invalid number")
OUTCOME_UNKNOWN = Outcome(error=OutcomeUnknownError, detail="timeout")


class ScriptedSender:
    name = "fake"
    channels = frozenset({Channel.VOICE, Channel.SMS, Channel.CHAT})

    def __init__(self) -> None:
        self.sent: list[OutboundPage] = []
        self.attempts: list[OutboundPage] = []
        self._script: dict[Channel | None, deque[Outcome]] = defaultdict(deque)
        self._accepted: dict[int, str] = {}
        self._checked = 0
        self.room_calls: list[RoomCall] = []
        self.texts: list[OutboundText] = []
        self.text_attempts: list[OutboundText] = []
        self._text_script: deque[Outcome] = deque()
        self._texts_checked = 0

    def script(self, *outcomes: Outcome, channel: Channel | None = None) -> None:
        """Queue outcomes for the next sends on `channel` (or on any channel)."""
        self._script[channel].extend(outcomes)

    def script_texts(self, *outcomes: Outcome) -> None:
        """Queue outcomes for the next texts (any channel); pages keep their own script."""
        self._text_script.extend(outcomes)

    def _next(self, channel: Channel) -> Outcome:
        for key in (channel, None):
            if self._script[key]:
                return self._script[key].popleft()
        return SENT

    async def send(self, page: OutboundPage) -> SendResult:
        self.attempts.append(page)
        outcome = self._next(page.channel)
        if outcome.error is not None:
            if outcome.error is OutcomeUnknownError:
                # The request left; the provider may or may not have taken it. Here it did not.
                raise OutcomeUnknownError(outcome.detail)
            raise outcome.error(outcome.detail)
        self.sent.append(page)
        external_id = f"FAKE{len(self.sent)}"
        self._accepted[page.page_id] = external_id
        return SendResult(self.name, external_id, outcome.state, outcome.detail)

    async def send_text(self, text: OutboundText) -> SendResult:
        self.text_attempts.append(text)
        outcome = self._text_script.popleft() if self._text_script else SENT
        if outcome.error is not None:
            raise outcome.error(outcome.detail)
        self.texts.append(text)
        return SendResult(self.name, f"FAKETEXT{len(self.texts)}", outcome.state, outcome.detail)

    async def status(self, page_id: int, _external_id: str | None) -> DeliveryUpdate | None:
        found = self._accepted.get(page_id)
        return None if found is None else DeliveryUpdate(found, DeliveryState.SENT)

    async def call_into_room(self, call: RoomCall) -> SendResult:
        self.room_calls.append(call)
        return SendResult(self.name, f"FAKEROOM{call.call_id}")

    # --- expectations -------------------------------------------------------------------------

    def take(self) -> list[OutboundPage]:
        """The pages sent since the last `take`, marked as seen."""
        new = self.sent[self._checked :]
        self._checked = len(self.sent)
        return new

    def expect(self, *expected: tuple[str, Channel]) -> list[OutboundPage]:
        """Assert that exactly these (staff name, channel) pages went out since the last check."""
        got = self.take()
        assert sorted((p.staff_name, p.channel) for p in got) == sorted(expected), (
            f"expected pages {sorted(expected)}, got "
            f"{sorted((p.staff_name, str(p.channel)) for p in got)}"
        )
        return got

    def take_texts(self) -> list[OutboundText]:
        """The texts sent since the last `take_texts`, marked as seen."""
        new = self.texts[self._texts_checked :]
        self._texts_checked = len(self.texts)
        return new

    def expect_texts(self, *expected: tuple[str, Channel]) -> list[OutboundText]:
        """Assert that exactly these (number, channel) texts went out since the last check;
        returns them in the order sent."""
        got = self.take_texts()
        assert sorted((t.to, str(t.channel)) for t in got) == sorted(
            (to, str(channel)) for to, channel in expected
        ), f"expected texts {sorted(expected)}, got {[(t.to, str(t.channel)) for t in got]}"
        return got

    def assert_no_more(self) -> None:
        extra = self.take()
        texts = self.take_texts()
        assert not extra, f"unexpected pages: {[(p.staff_name, str(p.channel)) for p in extra]}"
        assert not texts, f"unexpected texts: {[(t.to, str(t.channel), t.body) for t in texts]}"


if TYPE_CHECKING:
    from providers.base import MessageSender, StatusChecker, TextSender

    _check: type[MessageSender] = ScriptedSender
    _check_status: type[StatusChecker] = ScriptedSender
    _check_texts: type[TextSender] = ScriptedSender
