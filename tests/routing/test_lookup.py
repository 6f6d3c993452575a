"""`routing.engine.lookup.judge`: which of the sends a provider lists to a staff member's number
is a page whose id we never learned. Pure: records in, a verdict out."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from providers.base import SentRecord
from routing.engine.lookup import SLACK, Answer, Verdict, judge

DISPATCHED = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
RETRY = timedelta(seconds=30)
OURS, THEIRS = "a" * 43, "b" * 43
PAGE, OTHER_PAGE = 7, 8
LINK = "https://sos.example.test/ack/"


def record(sid: str, seconds: float = 1, body: str | None = None) -> SentRecord:
    return SentRecord(sid, DISPATCHED + timedelta(seconds=seconds), body)


def owners() -> dict[str, int]:
    def stored(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    return {stored(OURS): PAGE, stored(THEIRS): OTHER_PAGE}


def verdict(
    *records: SentRecord,
    complete: bool = True,
    after: float = 600,
    known: frozenset[str] = frozenset(),
) -> Answer:
    return judge(
        records,
        complete=complete,
        page_id=PAGE,
        dispatched_at=DISPATCHED,
        now=DISPATCHED + timedelta(seconds=after),
        settle=RETRY,
        known=known,
        link_owners=owners(),
    )


class TestJudge:
    def test_a_text_with_the_pages_own_link_is_it_whatever_else_was_sent(self) -> None:
        answer = verdict(
            record("SM1", body=f"SOS fraude {LINK}{THEIRS}"),
            record("SM2", body=f"SOS fraude {LINK}{OURS}"),
            record("SM3", body=None),
        )
        assert (answer.verdict, answer.external_id) == (Verdict.FOUND, "SM2")

    def test_a_text_with_another_pages_link_is_not_it(self) -> None:
        assert verdict(record("SM1", body=f"SOS {LINK}{THEIRS}")).verdict is Verdict.ABSENT

    @pytest.mark.parametrize(
        "body",
        [None, "", "Uw code is 123456", f"{LINK}{'c' * 43}"],
        ids=["call", "redacted", "no link", "a link nobody has"],
    )
    def test_a_single_send_that_may_be_it_is_it(self, body: str | None) -> None:
        answer = verdict(record("CA1", body=body))
        assert (answer.verdict, answer.external_id) == (Verdict.FOUND, "CA1")

    def test_two_sends_that_may_be_it_cannot_be_told_apart(self) -> None:
        answer = verdict(record("CA1"), record("CA2", seconds=5))
        assert answer.verdict is Verdict.UNSURE
        assert answer.detail == "2 sends to its address could be it"

    def test_a_send_another_row_holds_is_not_it(self) -> None:
        answer = verdict(record("CA1"), record("CA2"), known=frozenset({"CA1"}))
        assert (answer.verdict, answer.external_id) == (Verdict.FOUND, "CA2")

    @pytest.mark.parametrize("seconds", [-61, 61])
    def test_only_a_send_near_the_dispatch_mark_can_be_it(self, seconds: float) -> None:
        assert verdict(record("CA1", seconds=seconds)).verdict is Verdict.ABSENT
        inside = seconds - 1 if seconds > 0 else seconds + 1
        assert verdict(record("CA1", seconds=inside)).verdict is Verdict.FOUND

    def test_a_send_without_a_creation_time_may_be_it(self) -> None:
        assert verdict(SentRecord("CA1", None)).verdict is Verdict.FOUND

    def test_absent_only_once_the_provider_had_time_to_list_it(self) -> None:
        """The provider may take the page up to `SLACK` after the dispatch mark, and then needs
        the retry delay (or the time it lists late) to show it."""
        ready = (SLACK + RETRY).total_seconds()
        assert verdict(after=ready - 1).verdict is Verdict.WAIT
        assert verdict(after=ready).verdict is Verdict.ABSENT

    def test_never_absent_from_an_incomplete_list(self) -> None:
        assert verdict(complete=False).verdict is Verdict.UNSURE
        answer = verdict(record("CA1"), complete=False)
        assert (answer.verdict, answer.external_id) == (Verdict.FOUND, "CA1")
