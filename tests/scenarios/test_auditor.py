"""The escalation auditor: stuck or lost escalations are repaired and the operators hear about it
once; a healthy system, however busy, is left alone.

The faults are made by hand, as a bug, a dead worker or a stuck transaction would leave them: a
timer leased without a lease, a page left in `sending`, a report whose timers are gone, a row
locked by a transaction that never ends.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import delete, func, select, update

from app.settings import OperatorsSettings, Settings
from routing.audit.models import AuditEvent
from routing.page.models import EscalationTimer, Page
from tests.harness import CHAT, SMS, VOICE, Harness, types

OPERATORS = "+31611112222"


@pytest.fixture
def operators() -> OperatorsSettings:
    return OperatorsSettings(phone=OPERATORS, language="en")


@pytest.fixture
def settings(migrated: str, operators: OperatorsSettings) -> Settings:
    return Settings(database_url=migrated, sla_seconds=600, seed_demo=False, operators=operators)


def alert(h: Harness) -> str:
    """Exactly one text went out since the last check: the operators' alert."""
    [sent] = h.expect_texts((OPERATORS, SMS))
    return sent.body


async def lose_timers(h: Harness, report: dict[str, Any]) -> None:
    """Every timer of the report is gone (a bad migration, a manual fix gone wrong)."""
    async with h.container.db.begin() as session:
        await session.execute(
            delete(EscalationTimer).where(EscalationTimer.report_id == report["id"])
        )


async def repairs(h: Harness) -> int:
    return await h.count(AuditEvent, AuditEvent.type == "audit_repair")


async def test_a_timer_leased_without_a_lease_is_released_and_fires(h: Harness) -> None:
    await h.staff("Anna")
    await h.staff("Bram")
    await h.chain(("voice", ["Anna"], 60), ("sms", ["Bram"], 60))
    report = await h.report()
    await h.tick()
    h.expect(("Anna", VOICE))
    # A worker claimed the step timer but never wrote its lease: no takeover will ever come.
    async with h.container.db.begin() as session:
        await session.execute(
            update(EscalationTimer)
            .where(EscalationTimer.report_id == report["id"], EscalationTimer.kind == "step")
            .values(state="leased", lease_until=None)
        )

    await h.advance(90)  # due at 60; within the auditor's slack of 30 s it is not stuck yet
    h.expect()
    h.expect_texts()

    await h.advance(30)

    h.expect(("Bram", SMS))
    body = alert(h)
    assert "1 escalation timer stuck (1 repaired)" in body
    assert str(report["reference"]) in body
    seen = await h.get(str(report["id"]))
    [repair] = [e for e in seen["timeline"] if e["type"] == "audit_repair"]
    assert "step timer was claimed but never finished" in repair["detail"]


async def test_a_page_stuck_in_sending_goes_to_the_reconciler_not_out_again(h: Harness) -> None:
    await h.staff("Anna")
    await h.chain(("voice", ["Anna"], 600))
    report = await h.report()
    await h.tick()
    [call] = h.expect(("Anna", VOICE))
    # The call went out, but its row was left in `sending` without a lease.
    async with h.container.db.begin() as session:
        await session.execute(
            update(Page).where(Page.id == call.page_id).values(state="sending", lease_until=None)
        )

    await h.advance(60)

    h.expect()  # the reconciler found the call at the provider: not rung again
    assert "1 page stuck (1 repaired)" in alert(h)
    async with h.container.db() as session:
        assert await session.scalar(select(Page.state).where(Page.id == call.page_id)) == "sent"
    seen = await h.get(str(report["id"]))
    assert {"page_unknown", "audit_repair"} <= set(types(seen))


@pytest.mark.parametrize(("ack_after", "met"), [(300, True), (None, False)], ids=["ack", "none"])
async def test_a_report_that_lost_its_timers_gets_its_escalation_and_verdict_back(
    h: Harness, ack_after: int | None, met: bool
) -> None:
    await h.staff("Anna")
    await h.staff("Bram")
    await h.chain(("voice", ["Anna"], 60), ("voice", ["Bram"], 60))
    report = await h.report()
    await h.tick()
    h.expect(("Anna", VOICE))
    await lose_timers(h, report)

    await h.advance(30)  # the auditor's next run

    # The step it reached is over at once (its wait is unknown): Bram is paged.
    h.expect(("Bram", VOICE))
    assert f"1 report had lost its escalation (1 repaired). Reports: {report['reference']}." in (
        alert(h)
    )
    if ack_after is not None:
        await h.advance(ack_after - 30)
        assert (await h.ack(str(report["id"]), "Bram")).status_code == 200
        await h.tick()
        h.expect_accepted_text(report, by="Bram")
    await h.advance(600)

    seen = await h.get(str(report["id"]))
    assert seen["sla"]["met"] is met
    assert types(seen).count("sla_missed") == (0 if met else 1)
    [repair] = [e for e in seen["timeline"] if e["type"] == "audit_repair"]
    assert repair["data"]["restored"] == ["deadline", "step 1"]
    assert await repairs(h) == 1
    h.expect_texts()  # the repaired report needs nothing more: no second alert


async def test_operators_hear_of_one_kind_of_finding_at_most_once_a_quarter_hour(
    h: Harness,
) -> None:
    await h.staff("Anna", chat_id="U0ANNA")
    await h.chain(("chat", ["Anna"], 3600))
    first, second, third = [await h.report() for _ in range(3)]
    await h.tick()
    h.expect(("Anna", CHAT), ("Anna", CHAT), ("Anna", CHAT))

    await lose_timers(h, first)
    await h.advance(30)
    assert str(first["reference"]) in alert(h)

    await lose_timers(h, second)
    await h.advance(300)
    h.expect_texts()  # repaired, and on its timeline, but the operators know already
    assert "audit_repair" in types(await h.get(str(second["id"])))

    await h.advance(570)  # 15 minutes after the first alert
    await lose_timers(h, third)
    await h.advance(30)
    body = alert(h)
    assert str(third["reference"]) in body
    assert str(second["reference"]) not in body
    assert await repairs(h) == 3


@pytest.mark.parametrize("operators", [OperatorsSettings()])
async def test_without_an_operators_contact_the_auditor_logs_at_error(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    await h.staff("Anna")
    await h.chain(("voice", ["Anna"], 600))
    report = await h.report()
    await h.tick()
    h.expect(("Anna", VOICE))
    await lose_timers(h, report)

    with caplog.at_level(logging.ERROR, logger="routing.engine.auditor"):
        await h.advance(30)

    [record] = [r for r in caplog.records if r.name == "routing.engine.auditor"]
    assert record.levelno == logging.ERROR
    assert "lost_escalations 1 (1 repaired)" in record.getMessage()
    h.expect_texts()


@pytest.mark.postgres
async def test_a_timer_held_by_a_stuck_transaction_is_reported_and_fires_when_free(
    h: Harness,
) -> None:
    await h.staff("Anna", chat_id="U0ANNA")
    await h.staff("Bram", chat_id="U0BRAM")
    await h.chain(("chat", ["Anna"], 60), ("chat", ["Bram"], 60))
    report = await h.report()
    await h.tick()
    h.expect(("Anna", CHAT))
    async with h.container.db_engine.connect() as stuck:
        await stuck.execute(
            select(EscalationTimer.id)
            .where(EscalationTimer.report_id == report["id"], EscalationTimer.kind == "step")
            .with_for_update()
        )
        for _ in range(4):  # the engine ticks on; the claim skips the locked row
            h.clock.advance(30)
            await h.tick()
        h.expect()
        body = alert(h)
        assert "1 escalation timer stuck." in body  # nothing the auditor may release
        await stuck.rollback()

    await h.tick()
    h.expect(("Bram", CHAT))


async def test_a_healthy_system_with_many_open_escalations_is_left_alone(h: Harness) -> None:
    await h.staff("Anna", chat_id="U0ANNA")
    await h.staff("Bram", chat_id="U0BRAM")
    await h.chain(("chat", ["Anna"], 60), ("chat", ["Bram"], 60), categories=["fraud"])
    # More step timers fall due together than the escalator takes in one claim.
    reports = [await h.report() for _ in range(110)]
    await h.report(category="lost_card")  # no chain serves it: nothing to page, still open
    await h.report(callback_at=(h.clock.now() + timedelta(minutes=5)).isoformat())
    await h.tick()
    await h.advance(10)
    assert (await h.ack(str(reports[0]["id"]), "Anna")).status_code == 200
    await h.advance(49)

    # The engine is 20 s behind (a busy moment): within the slack, nothing is stuck.
    h.clock.advance(21)
    await h.tick()
    # The engine stops for two minutes, past the next steps' time (140 s). When it is back, the
    # auditor gives it a run to work off its backlog before it judges lateness.
    h.clock.advance(200)
    await h.tick()
    # Chains run out, promises break, the callback's chain runs: reports left open without a
    # timer that is still due, all as they should be.
    await h.advance(1200)

    assert await repairs(h) == 0
    beat = (await h.client.get("/heartbeat")).json()
    assert beat["status"] == "ok"
    assert beat["auditor"]["findings"] == dict.fromkeys(
        ("lost_escalations", "stuck_timers", "stuck_pages", "stuck_texts"), 0
    )
    assert [t.to for t in h.sender.take_texts() if t.to == OPERATORS] == []
    h.sender.take()
    async with h.container.db() as session:
        missed = await session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.type == "sla_missed")
        )
    assert missed == 111  # every fraud report but the accepted one, and the callback
