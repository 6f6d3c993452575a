"""The audit log: every change is an event, the events are chained by hash, `sos-router audit
verify` finds the first broken link, and the application cannot change or delete a row.

Tampering is done as an attacker with superuser rights or the database file would: past the
append-only triggers (`tamper`)."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from app.settings import Settings
from providers.fake import DELIVERED, NO_ANSWER
from routing.audit import service as audit
from routing.audit.models import AuditEvent, AuditSeal
from routing.audit.verify import Verdict, verify
from routing.auth.models import ApiToken
from routing.engine.sealer import Sealer
from routing.types import Role
from tests import keys
from tests.harness import SMS, VOICE, Harness
from tests.unlocked import audit_unlocked

ROOT = Path(__file__).resolve().parents[2]
CUSTOMER_STORY = "Someone called pretending to be the bank and I gave my card code"


async def checked(h: Harness) -> Verdict:
    async with h.container.db() as session:
        return await verify(session)


async def sealed(h: Harness) -> Verdict:
    """Let the sealer catch up (it runs at most once a second), then verify."""
    await h.advance(1)
    verdict = await checked(h)
    assert verdict.ok, verdict.lines()
    assert verdict.unsealed == 0
    return verdict


async def events(h: Harness) -> list[AuditEvent]:
    async with h.container.db() as session:
        return list(await session.scalars(select(AuditEvent).order_by(AuditEvent.id)))


async def tamper(h: Harness, *statements: str) -> None:
    """Run SQL past the triggers, as a superuser (PostgreSQL) or whoever holds the file (SQLite:
    its own connection, where foreign keys are not enforced unless asked)."""
    url = h.container.settings.database_url
    if url.startswith("postgresql"):
        async with h.container.db_engine.begin() as conn, audit_unlocked(conn):
            for sql in statements:
                await conn.execute(text(sql))
        return
    raw = sqlite3.connect(str(make_url(url).database))
    try:
        triggers = raw.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"
        ).fetchall()
        for name, _ in triggers:
            raw.execute(f'DROP TRIGGER "{name}"')
        for sql in statements:
            raw.execute(sql)
        for _, sql in triggers:
            raw.execute(sql)
        raw.commit()
    finally:
        raw.close()


async def a_day_of_work(h: Harness) -> dict[str, Any]:
    """A report's whole life, and an admin at work: every kind of change the log must show."""
    await h.staff("Anna", "+31611111111")
    await h.staff("Bram", "+31622222222")
    await h.chain(("voice", ["Anna"], 30), ("sms", ["Bram"], 60))
    schedule = await h.client.post(
        "/v1/schedules",
        json={"name": "nights", "layers": [_layer([h.names["Anna"]])]},
        headers=h.admin,
    )
    path = f"/v1/schedules/{schedule.json()['id']}"
    body = {"name": "nights", "layers": [_layer([h.names["Bram"]])]}
    assert (await h.client.put(path, json=body, headers=h.admin)).status_code == 200
    override = await h.client.post(
        f"{path}/overrides",
        json={
            "kind": "add",
            "staff_id": h.names["Anna"],
            "starts_at": "2026-01-05T10:00:00Z",
            "ends_at": "2026-01-05T12:00:00Z",
        },
        headers=h.admin,
    )
    assert override.status_code == 201, override.text
    gone = await h.client.delete(f"{path}/overrides/{override.json()['id']}", headers=h.admin)
    assert gone.status_code == 204
    assert (await h.client.delete(path, headers=h.admin)).status_code == 204

    h.sender.script(NO_ANSWER, channel=VOICE)
    h.sender.script(DELIVERED, channel=SMS)
    report = await h.report(description=CUSTOMER_STORY)
    await h.tick()
    h.expect(("Anna", VOICE), ("Bram", SMS))  # the missed call falls back at once
    joined = await h.client.post(  # the same customer again: joins the open case
        "/v1/reports",
        json={"category": "fraud", "callback_phone": report["callback_phone"]},
        headers=h.app,
    )
    assert joined.status_code == 200, joined.text
    await h.advance(700)  # nobody accepts in time: the promise is broken
    h.sender.take()
    assert (await h.ack(report["id"], "Bram")).status_code == 200
    resolved = await h.client.post(
        f"/v1/reports/{report['id']}/resolve", headers=h.as_staff("Bram")
    )
    assert resolved.status_code == 200, resolved.text
    await h.tick()
    h.expect_accepted_text(report, by="Bram")

    # A chain whose step pages Cas only after Anna (she speaks the customer's language): Anna
    # accepts while his page still waits, so it is canceled.
    await h.staff("Cas", "+31633333333", languages=["en"])
    await h.chain(("sms", ["Anna", "Cas"], 60), name="tiers")
    second = await h.report()
    await h.tick()
    h.expect(("Anna", SMS))
    assert (await h.ack(second["id"], "Anna")).status_code == 200
    await h.tick()
    h.expect_accepted_text(second, by="Anna")
    return report


def _layer(members: list[str]) -> dict[str, Any]:
    return {
        "name": "week",
        "members": members,
        "rotation": "daily",
        "handoff_time": "20:00",
        "start_date": "2026-01-01",
    }


async def test_every_change_is_an_event_and_every_event_is_chained(h: Harness) -> None:
    report = await a_day_of_work(h)

    verdict = await sealed(h)

    logged = await events(h)
    assert verdict.sealed == len(logged)
    async with h.container.db() as session:
        assert await verify(session, batch=7) == verdict  # read in batches, the same answer
    kinds = {e.type for e in logged}
    assert {
        # the report's life
        "received",
        "page_queued",
        "page_sent",
        "page_failed",
        "page_delivered",
        "page_canceled",
        "escalated",
        "routed",
        "contact",
        "sla_missed",
        "acknowledged",
        "resolved",
        # the admin's work
        "staff_created",
        "chain_created",
        "schedule_created",
        "schedule_changed",
        "override_created",
        "override_deleted",
        "schedule_deleted",
        "token_created",
    } <= kinds, kinds
    async with h.container.db() as session:
        admin = await session.scalar(select(ApiToken.id).where(ApiToken.role == Role.ADMIN))
    made_by_admin = [e for e in logged if e.type.startswith(("staff_", "chain_", "schedule_"))]
    assert made_by_admin
    assert {e.actor for e in made_by_admin} == {admin}

    # Every page has its own trail, from queued to its outcome.
    def pages(*kinds: str) -> set[int]:
        return {e.data["page_id"] for e in logged if e.type in kinds}

    assert pages("page_queued") == pages("page_sent", "page_canceled")
    assert pages("page_sent") >= pages("page_failed", "page_delivered")
    assert report["id"] in {e.report_id for e in logged}


async def test_events_hold_no_customer_data(h: Harness) -> None:
    report = await a_day_of_work(h)
    secrets = [CUSTOMER_STORY, report["callback_phone"], "+31611111111", "+31622222222"]
    secrets += ["611111111", "622222222", report["callback_phone"][3:]]

    logged = await events(h)
    assert len(logged) >= 20
    for event in logged:
        stored = f"{event.detail} {event.data}"
        assert not [s for s in secrets if s in stored], (event.type, stored)


async def test_a_phone_number_in_a_provider_message_is_masked(h: Harness) -> None:
    async with h.container.db.begin() as session:
        event = audit.record(
            session,
            at=h.clock.now(),
            type="page_failed",
            detail="twilio 400 / 21211: The 'To' number +31 6 1234 5678 is not valid",
            data={"error": "+31612345678 unreachable"},
        )
    assert "+31612345678" not in event.detail.replace(" ", "")
    assert event.detail.endswith("+31*******78 is not valid")
    assert event.data == {"error": "+31*******78 unreachable"}


class TestTampering:
    """Each change an attacker past the triggers could make is named at the first broken link."""

    @pytest.fixture
    async def chain(self, h: Harness) -> list[AuditEvent]:
        await a_day_of_work(h)
        await sealed(h)
        return (await events(h))[:5]

    async def test_an_edited_event(self, h: Harness, chain: list[AuditEvent]) -> None:
        await tamper(h, f"UPDATE audit_events SET actor = 'someone' WHERE id = {chain[2].id}")
        verdict = await checked(h)
        assert verdict.broken is not None
        assert (verdict.broken.chain_no, verdict.broken.event_id) == (3, chain[2].id)
        assert "changed" in verdict.broken.problem
        assert verdict.sealed == 2

    async def test_a_deleted_event(self, h: Harness, chain: list[AuditEvent]) -> None:
        await tamper(h, f"DELETE FROM audit_events WHERE id = {chain[3].id}")
        broken = (await checked(h)).broken
        assert broken is not None
        assert (broken.chain_no, broken.event_id) == (4, chain[3].id)
        assert "deleted" in broken.problem

    async def test_an_event_deleted_with_its_seal(
        self, h: Harness, chain: list[AuditEvent]
    ) -> None:
        await tamper(
            h,
            f"DELETE FROM audit_seals WHERE event_id = {chain[1].id}",
            f"DELETE FROM audit_events WHERE id = {chain[1].id}",
        )
        broken = (await checked(h)).broken
        assert broken is not None
        assert (broken.chain_no, broken.event_id) == (2, None)
        assert "missing" in broken.problem

    async def test_events_swapped(self, h: Harness, chain: list[AuditEvent]) -> None:
        first, second = chain[1], chain[2]
        await tamper(
            h,
            f"UPDATE audit_seals SET event_id = -1 WHERE event_id = {first.id}",
            f"UPDATE audit_seals SET event_id = {first.id} WHERE event_id = {second.id}",
            f"UPDATE audit_seals SET event_id = {second.id} WHERE event_id = -1",
        )
        broken = (await checked(h)).broken
        assert broken is not None
        assert (broken.chain_no, broken.event_id) == (2, second.id)

    async def test_a_seal_renumbered(self, h: Harness, chain: list[AuditEvent]) -> None:
        del chain
        await tamper(
            h,
            "UPDATE audit_seals SET chain_no = 1000 WHERE chain_no = 3",
            "UPDATE audit_seals SET chain_no = 3 WHERE chain_no = 4",
            "UPDATE audit_seals SET chain_no = 4 WHERE chain_no = 1000",
        )
        broken = (await checked(h)).broken
        assert broken is not None
        assert broken.chain_no == 3
        assert "does not follow seal 2" in broken.problem

    async def test_a_seal_recomputed_over_an_edit(
        self, h: Harness, chain: list[AuditEvent]
    ) -> None:
        """Rewriting one event and its own seal still breaks the link to the next seal."""
        from routing.audit.chain import link

        target = chain[1]
        target.detail = "nothing happened"
        async with h.container.db() as session:
            prev = await session.scalar(select(AuditSeal.hash).where(AuditSeal.chain_no == 1))
        assert prev is not None
        await tamper(
            h,
            f"UPDATE audit_events SET detail = 'nothing happened' WHERE id = {target.id}",
            f"UPDATE audit_seals SET hash = '{link(prev, target)}' WHERE chain_no = 2",
        )
        broken = (await checked(h)).broken
        assert broken is not None
        assert broken.chain_no == 3
        assert "does not follow seal 2" in broken.problem

    async def test_an_event_inserted_behind_the_chain(
        self, h: Harness, chain: list[AuditEvent]
    ) -> None:
        await tamper(
            h,
            "INSERT INTO audit_events (id, at, type, detail, data) "
            "VALUES (0, '2026-01-05 09:00:00', 'acknowledged', 'accepted in time', '{}')",
        )
        verdict = await checked(h)
        assert verdict.broken is not None
        assert (verdict.broken.chain_no, verdict.broken.event_id) == (None, 0)
        assert "inserted" in verdict.broken.problem
        assert verdict.unsealed == 1
        del chain


async def test_audit_verify_command_exits_0_then_names_the_broken_link(
    h: Harness, settings: Settings
) -> None:
    await a_day_of_work(h)
    verdict = await sealed(h)

    ok = await asyncio.to_thread(_verify_command, settings)
    assert ok.returncode == 0, ok.stderr
    assert f"{verdict.sealed} event(s) sealed; 0 event(s) not sealed yet" in ok.stdout
    assert f"head: seal {verdict.sealed} {verdict.head_hash}" in ok.stdout

    edited = (await events(h))[6]
    await tamper(h, f"UPDATE audit_events SET detail = 'x' WHERE id = {edited.id}")
    broken = await asyncio.to_thread(_verify_command, settings)
    assert broken.returncode == 1
    assert f"BROKEN at seal 7, event {edited.id}: the event no longer matches" in broken.stdout


def _verify_command(settings: Settings) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOS_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["SOS_DATABASE_URL"] = settings.database_url
    env.update(keys.ENV)  # a PostgreSQL deployment always has its data keys
    return subprocess.run(
        [sys.executable, "-m", "app", "audit", "verify"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_the_application_cannot_change_or_delete_audit_rows(h: Harness) -> None:
    await a_day_of_work(h)
    await sealed(h)
    attempts = [
        update(AuditEvent).values(detail="nothing happened"),
        delete(AuditEvent),
        update(AuditSeal).values(hash="0" * 64),
        delete(AuditSeal),
    ]
    for attempt in attempts:
        with pytest.raises(DBAPIError, match="append-only"):
            async with h.container.db.begin() as session:  # the application's own connection
                await session.execute(attempt)

    verdict = await checked(h)
    assert verdict.ok
    assert verdict.unsealed == 0
    assert verdict.sealed == len(await events(h))


@pytest.mark.postgres
async def test_on_postgresql_the_owner_cannot_truncate_and_nobody_else_may_write(
    h: Harness,
) -> None:
    await a_day_of_work(h)
    await sealed(h)
    for table in ("audit_events", "audit_seals"):
        with pytest.raises(DBAPIError, match="append-only: TRUNCATE refused"):
            async with h.container.db.begin() as session:
                await session.execute(text(f"TRUNCATE {table} CASCADE"))
        async with h.container.db() as session:
            granted = await session.scalar(
                text(
                    "SELECT has_table_privilege('public', :t, 'UPDATE') "
                    "OR has_table_privilege('public', :t, 'DELETE') "
                    "OR has_table_privilege('public', :t, 'TRUNCATE')"
                ),
                {"t": table},
            )
        assert granted is False
    assert (await checked(h)).ok


async def test_an_idle_sealer_costs_nothing(h: Harness) -> None:
    await a_day_of_work(h)
    await sealed(h)
    sealer = next(m for m in h.container.engine.modules if isinstance(m, Sealer))
    async with h.container.db() as session:
        new_events, recheck = (await session.execute(select(*sealer.due()))).one()
    assert new_events is None  # nothing to seal: the engine does not run it
    assert recheck >= h.clock.now() + sealer.settle - sealer.interval


async def test_a_backlog_is_sealed_without_waiting_between_batches(h: Harness) -> None:
    await sealed(h)  # what the harness set up (its tokens)
    async with h.container.db.begin() as session:
        for i in range(25):
            audit.record(session, at=h.clock.now(), type="test", detail=f"event {i}")
    sealer = Sealer(batch=10)
    now = h.clock.now()
    assert [await sealer.run_once(h.container.db, now) for _ in range(4)] == [10, 10, 5, 0]
    verdict = await checked(h)
    assert verdict.ok
    assert verdict.unsealed == 0


@pytest.mark.postgres
async def test_an_event_that_commits_late_is_sealed_by_a_later_run(h: Harness) -> None:
    """Ids are taken at insert: an event can commit after a later one was already sealed."""
    db, now = h.container.db, h.clock.now()
    sealer = Sealer(interval_seconds=1, settle_seconds=60)
    await sealed(h)  # what the harness set up (its tokens)
    async with db.begin() as late:
        slow = audit.record(late, at=now, type="test", detail="taken first, committed last")
        await late.flush()
        async with db.begin() as quick:
            audit.record(quick, at=now, type="test", detail="taken second, committed first")
        assert await sealer.run_once(db, now) == 1
        assert (await checked(h)).ok  # the first is invisible still
    verdict = await checked(h)
    assert verdict.ok  # the first waits for the sealer: not "inserted behind the chain"
    assert verdict.unsealed == 1

    assert await sealer.run_once(db, now + sealer.interval) == 1
    verdict = await checked(h)
    assert verdict.ok
    assert verdict.unsealed == 0
    async with db() as session:
        last = await session.scalar(select(AuditSeal).order_by(AuditSeal.chain_no.desc()))
    assert last is not None
    assert last.event_id == slow.id


@pytest.mark.postgres
async def test_a_rolled_back_id_is_forgotten_after_the_settle_time(h: Harness) -> None:
    db, now = h.container.db, h.clock.now()
    sealer = Sealer(interval_seconds=1, settle_seconds=60)
    await sealed(h)  # what the harness set up (its tokens)
    async with db() as session:
        audit.record(session, at=now, type="test", detail="rolled back")
        await session.flush()  # takes an id
        await session.rollback()
    async with db.begin() as session:
        audit.record(session, at=now, type="test", detail="kept")
    assert await sealer.run_once(db, now) == 1
    gaps = await _gaps(h)
    assert len(gaps) == 1

    await sealer.run_once(db, now + sealer.settle)
    assert await _gaps(h) == {}
    assert (await checked(h)).ok


async def _gaps(h: Harness) -> dict[str, str]:
    async with h.container.db() as session:
        detail = await session.scalar(text("SELECT detail FROM heartbeats WHERE name = 'sealer'"))
    return dict(detail["gaps"]) if isinstance(detail, dict) else {}


@pytest.mark.postgres
async def test_recording_an_event_never_waits_for_the_sealer(h: Harness) -> None:
    """Intake and paging take no chain lock: a seal in progress holds up no report."""
    await h.staff("Anna", "+31611111111")
    await h.chain(("voice", ["Anna"], 30))
    sealer = Sealer()
    async with h.container.db.begin() as sealing:
        from routing.engine.sealer import LOCK_KEY, seal

        await sealing.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_KEY})
        await seal(sealing, now=h.clock.now(), settle=sealer.settle)  # uncommitted seals
        report = await asyncio.wait_for(h.report(), timeout=10)
        assert await sealer.run_once(h.container.db, h.clock.now()) == 0  # one sealer at a time
    await h.tick()
    h.expect(("Anna", VOICE))
    verdict = await sealed(h)
    assert verdict.sealed == len(await events(h))
    assert report["id"]


@pytest.mark.postgres
async def test_two_engines_sealing_at_once_keep_one_chain(h: Harness, settings: Settings) -> None:
    from app.container import build

    other = build(settings, clock=h.clock, senders=[h.sender], raise_errors=True)
    mine = next(m for m in h.container.engine.modules if isinstance(m, Sealer))
    theirs = next(m for m in other.engine.modules if isinstance(m, Sealer))
    try:
        for round_no in range(20):
            async with h.container.db.begin() as session:
                for i in range(5):
                    audit.record(session, at=h.clock.now(), type="test", detail=f"{round_no}.{i}")
            h.clock.advance(1)
            await asyncio.gather(
                mine.run_once(h.container.db, h.clock.now()),
                theirs.run_once(other.db, h.clock.now()),
            )
    finally:
        await other.close()
    verdict = await checked(h)
    assert verdict.ok, verdict.lines()
    assert verdict.unsealed == 0
    assert verdict.sealed == len(await events(h))
