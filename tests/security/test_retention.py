"""Retention: 90 days after a case was resolved (365 after it arrived, if it never was) the
customer's personal data is gone — phone number, description, customer_ref, the texts we sent
them, their SOS-line call record, their status link — while the verdict stays: `/v1/sla` gives
the same figures before and after, the timeline is the same, and no audit event is touched."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from sqlalchemy import text

from app.db import create_engine
from routing.inbound import sos_line
from routing.inbound.models import SosCall
from routing.notify.models import OutboundMessage
from routing.report.models import Report, StatusToken
from tests.harness import SMS, Harness
from tests.security.test_encryption import everything

DAY = 86400
DESCRIPTION = "They called as the bank and I gave them my code, now 3000 euro is gone"
CUSTOMER_REF = "C-7654321"
# The customers' numbers as they would be found in a copy of the database.
APP_CUSTOMER, CALLER, UNRESOLVED = "+31612345678", "+31611122233", "+31644455566"


async def audit_rows(h: Harness) -> list[Any]:
    engine = create_engine(h.container.settings.database_url)
    try:
        async with engine.connect() as conn:
            query = text("SELECT id, at, type, actor, detail, data FROM audit_events ORDER BY id")
            return list(await conn.execute(query))
    finally:
        await engine.dispose()


async def sla(h: Harness) -> dict[str, Any]:
    r = await h.client.get("/v1/sla", headers=h.admin)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def later(h: Harness, seconds: float) -> None:
    """Jump the clock and let the engine do what is due (the auditor's 30 s beats are skipped:
    a daily job is what is tested)."""
    h.clock.advance(seconds)
    await h.tick()


async def resolve(h: Harness, report_id: str) -> None:
    assert (await h.ack(report_id, "Anna")).status_code == 200
    r = await h.client.post(f"/v1/reports/{report_id}/resolve", headers=h.as_staff("Anna"))
    assert r.status_code == 200, r.text


async def test_personal_data_goes_and_the_verdicts_stay(h: Harness) -> None:
    await h.staff("Anna", "+31687654321")
    app_report = await h.report(
        callback_phone="06 12345678", description=DESCRIPTION, customer_ref=CUSTOMER_REF
    )
    status_page = urlparse(app_report["status_url"]).path
    async with h.container.db.begin() as session:
        call = await sos_line.report_for_call(
            session,
            call_sid="CA" + "1" * 32,
            caller=CALLER,
            language="nl",
            category="fraud",
            now=h.clock.now(),
            sla_seconds=600,
        )
    unresolved = await h.report(callback_phone="06 44455566", description="never resolved")
    h.clock.advance(120)
    await resolve(h, app_report["id"])
    await resolve(h, call.id)
    await h.advance(3600)  # the texts go out; the unresolved report misses its deadline
    # The caller's receipt, and "Anna belt u nu" to the app's customer (the caller, holding on
    # the line, meets Anna there).
    h.expect_texts((CALLER, SMS), (APP_CUSTOMER, SMS))

    figures, events = await sla(h), await audit_rows(h)
    timeline = (await h.get(app_report["id"]))["timeline"]
    assert (await h.client.get(status_page)).status_code == 200
    personal = (APP_CUSTOMER[3:], CALLER[3:], DESCRIPTION, CUSTOMER_REF)
    for value in personal:  # the audit trail never held any of it
        assert value not in repr(events)

    await later(h, 89 * DAY)  # the job runs daily; nothing is old enough yet
    assert (await h.get(app_report["id"]))["description"] == DESCRIPTION

    await later(h, 2 * DAY)  # 90 days after the resolution have passed
    for report_id in (app_report["id"], call.id):
        erased = await h.get(report_id)
        assert (erased["callback_phone"], erased["description"], erased["customer_ref"]) == (
            "",
            None,
            None,
        )
        assert await h.count(OutboundMessage, OutboundMessage.report_id == report_id) == 0
        assert await h.count(SosCall, SosCall.report_id == report_id) == 0
        assert await h.count(StatusToken, StatusToken.report_id == report_id) == 0
        hashed = Report.callback_phone_hash.is_not(None)
        assert await h.count(Report, Report.id == report_id, hashed) == 0
    assert (await h.client.get(status_page)).status_code == 404
    dump = await everything(h.container.settings.database_url)
    for value in personal:
        assert value not in dump
    # The verdicts and their history are as they were.
    assert (await h.get(app_report["id"]))["timeline"] == timeline
    assert await sla(h) == figures
    kept = await h.get(unresolved["id"])
    assert (kept["callback_phone"], kept["sla"]["met"]) == (UNRESOLVED, False)

    await later(h, 275 * DAY)  # a year after it arrived, the unresolved one goes too
    gone = await h.get(unresolved["id"])
    assert (gone["callback_phone"], gone["description"], gone["sla"]["met"]) == ("", None, False)
    assert await sla(h) == figures
    assert await audit_rows(h) == events  # append-only: the job never changed one
