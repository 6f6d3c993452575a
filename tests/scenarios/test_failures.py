"""Provider outcomes drive the chain: a missed page moves on at once, a temporary error retries
the same page, an unknown outcome is reconciled before anything is sent again."""

import pytest
from sqlalchemy import select, update

from providers.base import OutboundPage, SendResult, TemporaryProviderError
from providers.fake import FAILS_PERMANENTLY, FAILS_TEMPORARILY, NO_ANSWER, OUTCOME_UNKNOWN
from routing.page.models import EscalationTimer, Page
from tests.harness import SMS, VOICE, Harness, types


async def _chain(h: Harness) -> None:
    await h.staff("Anna")
    await h.staff("Bram")
    await h.chain(("voice", ["Anna"], 60), ("sms", ["Bram"], 60))


async def test_missed_call_falls_back_at_once_not_at_the_step_timeout(h: Harness) -> None:
    await _chain(h)
    h.sender.script(NO_ANSWER, channel=VOICE)
    report = await h.report()

    await h.tick()  # no clock movement at all

    h.expect(("Anna", VOICE), ("Bram", SMS))
    seen = await h.get(report["id"])
    assert types(seen) == [
        "received",
        "page_queued",
        "page_sent",
        "page_failed",
        "escalated",
        "page_queued",
        "page_sent",
    ]
    assert "no-answer" in seen["timeline"][3]["detail"]


async def test_permanent_rejection_falls_back_at_once(h: Harness) -> None:
    await _chain(h)
    h.sender.script(FAILS_PERMANENTLY, channel=VOICE)
    report = await h.report()
    await h.tick()
    h.expect(("Bram", SMS))
    assert len(h.sender.attempts) == 2  # the rejected number was not tried again
    assert "invalid number" in (await h.get(report["id"]))["timeline"][2]["detail"]


async def test_fallback_waits_until_every_target_of_the_step_failed(h: Harness) -> None:
    await h.staff("Anna")
    await h.staff("Bram")
    await h.staff("Chris")
    await h.chain(("voice", ["Anna", "Bram"], 60), ("sms", ["Chris"], 60))
    h.sender.script(NO_ANSWER, channel=VOICE)
    await h.report()
    await h.tick()
    h.expect(("Anna", VOICE), ("Bram", VOICE))  # Bram's call is still ringing
    await h.advance(59)
    h.expect_none()
    await h.advance(1)
    h.expect(("Chris", SMS))


async def test_temporary_error_retries_the_same_page_with_backoff(h: Harness) -> None:
    await _chain(h)
    h.sender.script(FAILS_TEMPORARILY, FAILS_TEMPORARILY, channel=VOICE)
    report = await h.report()
    await h.tick()
    h.expect_none()
    await h.advance(2)
    h.expect_none()  # second try also rate limited; next in 4 s
    await h.advance(4)
    h.expect(("Anna", VOICE))
    assert await h.count(Page) == 1, "retries reuse the page row: one page, counted once"
    assert types(await h.get(report["id"])).count("page_retry") == 2


async def test_temporary_errors_give_up_after_four_tries_and_fall_back(h: Harness) -> None:
    await _chain(h)
    h.sender.script(*[FAILS_TEMPORARILY] * 4, channel=VOICE)
    await h.report()
    await h.advance(2 + 4 + 8)
    h.expect(("Bram", SMS))
    assert [p.channel for p in h.sender.attempts] == [VOICE] * 4 + [SMS]


async def test_unknown_outcome_is_reconciled_then_resent_once(h: Harness) -> None:
    await _chain(h)
    h.sender.script(OUTCOME_UNKNOWN, channel=VOICE)
    report = await h.report()
    await h.tick()
    h.expect_none()
    assert await h.count(Page, Page.state == "unknown") == 1

    await h.advance(30)  # the reconciler asks the provider: it never got the call

    h.expect(("Anna", VOICE))
    assert await h.count(Page) == 1
    assert "page_unknown" in types(await h.get(report["id"]))


async def _pages(h: Harness) -> list[Page]:
    async with h.container.db() as session:
        return list(await session.scalars(select(Page).order_by(Page.id)))


async def test_worker_lost_before_the_provider_call_sends_the_page_again_once(
    h: Harness,
) -> None:
    await _chain(h)
    await h.report()
    await h.route()
    # A worker claimed the page and died before its dispatch mark: it never called the provider.
    async with h.container.db.begin() as session:
        await session.execute(
            update(Page).values(
                state="sending",
                fence=Page.fence + 1,
                tries=Page.tries + 1,
                lease_until=h.clock.now(),
            )
        )
    await h.advance(1)  # lease expired, no dispatch mark → provably unsent → sent again, once
    h.expect(("Anna", VOICE))
    (page,) = await _pages(h)
    assert (page.state, page.tries) == ("sent", 1)
    assert "page_unknown" not in types(await h.get(page.report_id))
    await h.advance(60)
    h.expect(("Bram", SMS))


async def test_worker_lost_after_its_dispatch_mark_is_reconciled_not_blindly_resent(
    h: Harness,
) -> None:
    await _chain(h)
    await h.report()
    await h.route()
    # The worker marked the page dispatched and died: the provider may or may not have it.
    async with h.container.db.begin() as session:
        await session.execute(
            update(Page).values(
                state="sending",
                fence=Page.fence + 1,
                lease_until=h.clock.now(),
                dispatched_at=h.clock.now(),
            )
        )
    await h.advance(1)  # lease expired → unknown → the fake has no such call → sent once
    h.expect(("Anna", VOICE))
    (page,) = await _pages(h)
    assert "page_unknown" in types(await h.get(page.report_id))
    await h.advance(60)
    h.expect(("Bram", SMS))


async def test_worker_lost_after_provider_accepted_is_not_sent_twice(h: Harness) -> None:
    await _chain(h)
    await h.report()
    await h.tick()
    h.expect(("Anna", VOICE))
    # The provider took the call, but the worker died before recording it.
    async with h.container.db.begin() as session:
        await session.execute(
            update(Page).values(
                state="sending",
                fence=Page.fence + 1,
                lease_until=h.clock.now(),
                dispatched_at=h.clock.now(),
            )
        )
    await h.advance(59)
    h.expect_none()
    assert await h.count(Page, Page.state == "sent") == 1
    await h.advance(1)
    h.expect(("Bram", SMS))


async def test_timer_of_a_crashed_worker_is_taken_over_after_its_lease(h: Harness) -> None:
    await _chain(h)
    await h.report()
    await h.tick()
    h.expect(("Anna", VOICE))
    h.clock.advance(60)
    # Another worker leased the step timer and died holding it.
    async with h.container.db.begin() as session:
        await session.execute(
            update(EscalationTimer)
            .where(EscalationTimer.kind == "step")
            .values(
                state="leased",
                fence=EscalationTimer.fence + 1,
                lease_until=h.clock.now().replace(microsecond=0),
            )
        )
    await h.tick()
    h.expect_none()
    await h.advance(10)
    h.expect(("Bram", SMS))


async def test_after_downtime_overdue_steps_fire_at_once_marked_late(h: Harness) -> None:
    await _chain(h)
    report = await h.report()
    await h.tick()
    h.expect(("Anna", VOICE))

    h.clock.advance(15 * 60)  # every process was down for 15 minutes
    await h.tick()

    h.expect(("Bram", SMS))
    seen = await h.get(report["id"])
    assert seen["sla"]["met"] is False  # the missed deadline stays missed
    escalated = next(e for e in seen["timeline"] if e["type"] == "escalated")
    assert escalated["data"]["late"] is True
    assert "late by 840 s" in escalated["detail"]
    async with h.container.db() as session:
        page = await session.get(Page, 2)
        assert page is not None
        assert page.is_late


async def test_a_page_lost_mid_send_is_not_sent_after_the_report_was_accepted(h: Harness) -> None:
    await _chain(h)
    report = await h.report()
    await h.route()
    # A worker claimed Anna's call and died before calling the provider.
    async with h.container.db.begin() as session:
        await session.execute(
            update(Page).values(state="sending", fence=Page.fence + 1, lease_until=h.clock.now())
        )
    assert (await h.ack(report["id"], "Bram")).status_code == 200

    await h.advance(60)  # the lease runs out; the provider says it never got the call

    h.expect_accepted_text(report, by="Bram")
    h.expect_none()  # nobody is paged for a report Bram holds
    assert await h.count(Page, Page.state == "canceled") == 1


async def test_a_rate_limited_page_is_not_retried_after_the_report_was_accepted(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _chain(h)
    report = await h.report()
    first_send = h.sender.send

    async def accepted_meanwhile(_page: OutboundPage) -> SendResult:
        # Bram accepts while the provider is still answering Anna's call request: 429.
        monkeypatch.setattr(h.sender, "send", first_send)
        assert (await h.ack(report["id"], "Bram")).status_code == 200
        raise TemporaryProviderError("429 too many requests")

    monkeypatch.setattr(h.sender, "send", accepted_meanwhile)
    await h.advance(60)

    h.expect_accepted_text(report, by="Bram")
    h.expect_none()  # the rate-limited call is not tried again
    assert await h.count(Page, Page.state == "canceled") == 1
